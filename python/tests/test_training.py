"""The Python API trains LeNet-5 to the same bits as `cnnrt train` with the same settings."""

import numpy as np

import cnnrt
from conftest import read_safetensors, synthetic_images, TRAIN_COUNT, TEST_COUNT

# One CPU thread: the convolution weight gradients add per-thread partial sums, so runs are
# bit-identical only for one thread count.
SETTINGS = dict(batch=32, seed=7, threads=1, epochs=2)


def cli_train(tool, idx_dir, checkpoint):
    tool("train", "--model", "lenet5", "--data", idx_dir, "--device", "cpu",
         "--batch", SETTINGS["batch"], "--seed", SETTINGS["seed"],
         "--threads", SETTINGS["threads"], "--epochs", SETTINGS["epochs"],
         "--checkpoint", checkpoint)


def python_model():
    return cnnrt.Model(cnnrt.load_network("lenet5"), device="cpu",
                       batch_size=SETTINGS["batch"], seed=SETTINGS["seed"],
                       threads=SETTINGS["threads"])


def assert_same_tensors(a_path, b_path):
    a, a_meta = read_safetensors(a_path)
    b, b_meta = read_safetensors(b_path)
    assert sorted(a) == sorted(b)
    assert "conv1.weight" in a and "conv1.weight.momentum" in a
    for name in a:
        assert a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), f"{name} differs"
    assert a_meta["epochs_done"] == b_meta["epochs_done"] == str(SETTINGS["epochs"])


def test_train_matches_cli_bit_for_bit(tool, idx_dir, tmp_path):
    cli_train(tool, idx_dir, tmp_path / "cli.safetensors")

    model = python_model()
    initial = model.parameter("conv1.weight")
    epochs = []
    last = cnnrt.train(model, cnnrt.load_mnist_split(str(idx_dir), True),
                       cnnrt.load_mnist_split(str(idx_dir), False), epochs=SETTINGS["epochs"],
                       checkpoint=str(tmp_path / "py.safetensors"), on_epoch=epochs.append)
    assert [r.epoch for r in epochs] == [1, 2]
    assert last.epoch == 2 and not last.stopped
    assert last.train.samples == TRAIN_COUNT and last.test.samples == TEST_COUNT
    assert not np.array_equal(model.parameter("conv1.weight"), initial)  # it trained
    # The data is easy: training has to get well past chance (0.1).
    assert last.test.accuracy > 0.5
    assert_same_tensors(tmp_path / "cli.safetensors", tmp_path / "py.safetensors")

    # The same run from NumPy arrays (channels-last input, as image libraries give it).
    train_images, train_labels = synthetic_images(TRAIN_COUNT, 1)
    test_images, test_labels = synthetic_images(TEST_COUNT, 2)
    model = python_model()
    cnnrt.train(model, cnnrt.Dataset(train_images[..., None], train_labels),
                cnnrt.Dataset(test_images, test_labels.astype(np.int64)),
                epochs=SETTINGS["epochs"], checkpoint=str(tmp_path / "numpy.safetensors"))
    assert_same_tensors(tmp_path / "cli.safetensors", tmp_path / "numpy.safetensors")


def test_train_releases_the_gil(idx_dir):
    import threading

    counter = [0]
    done = threading.Event()

    def count():
        while not done.is_set():
            counter[0] += 1

    model = python_model()
    train_set = cnnrt.load_mnist_split(str(idx_dir), True)
    test_set = cnnrt.load_mnist_split(str(idx_dir), False)
    seen = []
    thread = threading.Thread(target=count)
    thread.start()
    try:
        cnnrt.train(model, train_set, test_set, epochs=2,
                    on_epoch=lambda report: seen.append(counter[0]))
    finally:
        done.set()
        thread.join()
    # Between the two epoch callbacks the other thread kept running: an epoch of steps is tens of
    # milliseconds, so it counts far past a few iterations (it would be stuck if the GIL were held).
    assert seen[1] - seen[0] > 1000


def test_train_step_is_sgd_on_the_gradient():
    # A dense-only network: one SGD step (no momentum) moves each parameter by -lr * gradient.
    net = cnnrt.Network((1, 4, 4), 3).dense(5).relu().dense(3)
    model = cnnrt.Model(net, device="cpu", batch_size=8, seed=3, threads=1)
    lr = 0.5
    model.set_optimizer("sgd", lr=lr)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 4, 4)).astype(np.float32)
    labels = rng.integers(0, 3, size=8)
    model.forward_backward(x, labels)
    before = {name: model.parameter(name) for name, _ in model.parameters()}
    grads = {name: model.gradient(name) for name, _ in model.parameters()}
    assert any(np.abs(g).max() > 0 for g in grads.values())
    stats = model.train_step(x, labels)
    assert stats.samples == 8
    for name in before:
        expected = before[name] - np.float32(lr) * grads[name]
        np.testing.assert_allclose(model.parameter(name), expected, rtol=1e-6, atol=1e-7)
