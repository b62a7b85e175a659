"""asv suites for the GPT-2 workload, one class per metric family of the case table."""

from .common import TimedFamily, TrackedFamily, bind, cache_family


@bind
class GPTStep(TimedFamily):
    family = "GPTStep"
    repeat = (10, 20, 30.0)     # enough raw samples for the gate's rank test to see a 10 % change


@bind
class GPTThroughput(TrackedFamily):
    family = "GPTThroughput"

    def setup_cache(self):
        return cache_family("GPTThroughput")


@bind
class GPTMemory(TrackedFamily):
    family = "GPTMemory"

    def setup_cache(self):
        return cache_family("GPTMemory")


@bind
class GPTFlops(TrackedFamily):
    family = "GPTFlops"

    def setup_cache(self):
        return cache_family("GPTFlops")


@bind
class GPTOpCount(TrackedFamily):
    family = "GPTOpCount"

    def setup_cache(self):
        return cache_family("GPTOpCount")


@bind
class GPTMaxBatch(TrackedFamily):
    family = "GPTMaxBatch"

    def setup_cache(self):
        return cache_family("GPTMaxBatch")


@bind
class GPTKernelBreakdown(TrackedFamily):
    family = "GPTKernelBreakdown"

    def setup_cache(self):
        return cache_family("GPTKernelBreakdown")


@bind
class GPTScaling(TrackedFamily):
    family = "GPTScaling"        # each row launches torchrun for 1 and world_size ranks

    def setup_cache(self):
        return cache_family("GPTScaling")
