"""The GPU kit: every GPU number of the project in one prepared call of fixed length (`spikeflops kit`).

``plan`` says which stages run and what each measures, ``stage`` is what runs in a stage's own
process, ``runner`` runs the stages under their time budgets and writes the results after each,
``summary`` turns the results into the tables a person reads.
"""
