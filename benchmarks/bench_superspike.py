"""asv suites for SuperSpike, one class per metric family of the case table."""

from .common import TimedFamily, TrackedFamily, bind, cache_family


@bind
class SuperSpikeTrial(TimedFamily):
    family = "SuperSpikeTrial"
    repeat = (4, 5, 600.0)      # >= 4 samples: with 3 against 3 no rank test can reach p < 0.05


@bind
class SuperSpikeConvergence(TrackedFamily):
    family = "SuperSpikeConvergence"
    timeout = 7200

    def setup_cache(self):
        return cache_family("SuperSpikeConvergence")


@bind
class SuperSpikeKernelTimes(TrackedFamily):
    family = "SuperSpikeKernelTimes"

    def setup_cache(self):
        return cache_family("SuperSpikeKernelTimes")


@bind
class SuperSpikeSetup(TrackedFamily):
    family = "SuperSpikeSetup"

    def setup_cache(self):
        return cache_family("SuperSpikeSetup")


@bind
class SuperSpikePhaseTimes(TrackedFamily):
    family = "SuperSpikePhaseTimes"

    def setup_cache(self):
        return cache_family("SuperSpikePhaseTimes")


@bind
class SuperSpikeOpCount(TrackedFamily):
    family = "SuperSpikeOpCount"

    def setup_cache(self):
        return cache_family("SuperSpikeOpCount")
