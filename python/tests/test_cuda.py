"""The CUDA path from Python: the same logits as the CPU path within float tolerance, and training
steps that run. Skipped without a CUDA device (the build machine has none)."""

import numpy as np
import pytest

import cnnrt

pytestmark = pytest.mark.skipif(not cnnrt.cuda_available(), reason="no CUDA device")

# Different summation orders on the two devices.
RTOL = 1e-4
ATOL = 1e-4


def test_cuda_logits_match_cpu():
    net = cnnrt.load_network("lenet5")
    cpu = cnnrt.Model(net, device="cpu", batch_size=16, seed=3, threads=1)
    cuda = cnnrt.Model(net, device="cuda", batch_size=16, seed=3)
    for name, _ in cpu.parameters():
        assert cuda.parameter(name).tobytes() == cpu.parameter(name).tobytes(), name
    x = np.random.default_rng(0).integers(0, 256, size=(20, 28, 28)).astype(np.uint8)
    expected = cpu.logits(x)
    got = cuda.logits(x)
    assert np.all(np.abs(got - expected) <= ATOL + RTOL * np.abs(expected))
    labels = np.arange(16) % 10
    stats = cuda.train_step(x[:16], labels)
    assert stats.samples == 16 and np.isfinite(stats.loss_sum)
    assert np.abs(cuda.gradient("conv1.weight")).max() > 0
