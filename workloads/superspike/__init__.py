"""SuperSpike (Zenke & Ganguli 2018): a 3-layer LIF network learns to turn frozen
Poisson input into a target spike raster, with a PyGeNN and a PyTorch backend."""
