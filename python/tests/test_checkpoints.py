"""Checkpoints written by Python are read by the CLI, and the other way round; Ctrl-C stops a
training call cleanly with a checkpoint to resume from."""

import os
import re
import signal

import numpy as np
import pytest

import cnnrt
from conftest import read_safetensors

BATCH = 32


def model(seed=11):
    return cnnrt.Model(cnnrt.load_network("lenet5"), device="cpu", batch_size=BATCH, seed=seed,
                       threads=1)


def splits(idx_dir):
    return cnnrt.load_mnist_split(str(idx_dir), True), cnnrt.load_mnist_split(str(idx_dir), False)


def test_python_checkpoint_read_by_the_cli(tool, idx_dir, tmp_path):
    train_set, test_set = splits(idx_dir)
    m = model()
    cnnrt.train(m, train_set, test_set, epochs=1, lr=0.05)
    path = tmp_path / "py.safetensors"
    cnnrt.save_checkpoint(str(path), m, 1)

    # cnnrt eval: the same accuracy and loss as the Python model's on the test set.
    out = tool("eval", "--model", "lenet5", "--weights", path, "--data", idx_dir,
               "--device", "cpu", "--batch", BATCH, "--threads", 1)
    accuracy, loss, images = re.search(r"accuracy (\S+) loss (\S+) images (\d+)", out).groups()
    stats = m.evaluate(test_set)
    assert int(images) == stats.samples == test_set.count
    assert accuracy == f"{stats.accuracy:.4f}" and loss == f"{stats.mean_loss:.4f}"

    # cnnrt predict --out: the test set's logits, which the Python model gives from uint8 images.
    tool("predict", "--weights", path, "--data", idx_dir, "--device", "cpu", "--batch", BATCH,
         "--out", tmp_path / "logits.safetensors")
    tensors, _ = read_safetensors(tmp_path / "logits.safetensors")
    # predict runs on all cores (it has no thread setting), which a model with threads=0 does too:
    # the forward pass's bits depend on the thread count.
    loaded = cnnrt.Model(cnnrt.load_network("lenet5"), device="cpu", batch_size=BATCH)
    cnnrt.load_checkpoint(str(path), loaded, with_optimizer_state=False)
    images = test_set.images.transpose(0, 2, 3, 1)  # N, H, W, C
    logits = loaded.logits(images)
    assert tensors["logits"].shape == logits.shape
    assert tensors["logits"].tobytes() == logits.tobytes()
    np.testing.assert_array_equal(tensors["labels"], test_set.labels)


def test_cli_checkpoint_read_by_python(tool, idx_dir, tmp_path):
    path = tmp_path / "cli.safetensors"
    tool("train", "--model", "lenet5", "--data", idx_dir, "--device", "cpu", "--batch", BATCH,
         "--threads", 1, "--epochs", 1, "--checkpoint", path)
    m = model(seed=99)  # other initial weights: all of them must come from the file
    state = cnnrt.load_checkpoint(str(path), m)
    assert state.epochs_done == 1 and state.optimizer == "sgd" and state.has_momentum
    tensors, _ = read_safetensors(path)
    for name, _ in m.parameters():
        assert m.parameter(name).tobytes() == tensors[name].tobytes(), name
        assert m.momentum(name).tobytes() == tensors[name + ".momentum"].tobytes(), name
    assert m.normalization == ([pytest.approx(cnnrt.IDX_DEFAULT_MEAN)],
                               [pytest.approx(cnnrt.IDX_DEFAULT_STD)])
    out = tool("eval", "--model", "lenet5", "--weights", path, "--data", idx_dir,
               "--device", "cpu", "--batch", BATCH, "--threads", 1)
    accuracy = re.search(r"accuracy (\S+)", out).group(1)
    assert accuracy == f"{m.evaluate(splits(idx_dir)[1]).accuracy:.4f}"


def test_ctrl_c_stops_training_and_resume_is_exact(idx_dir, tmp_path):
    train_set, test_set = splits(idx_dir)
    full = tmp_path / "full.safetensors"
    cnnrt.train(model(), train_set, test_set, epochs=2, checkpoint=str(full))

    stopped = tmp_path / "stopped.safetensors"
    m = model()

    def on_step(epoch, step, steps):
        if epoch == 1 and step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends

    with pytest.raises(KeyboardInterrupt):
        cnnrt.train(m, train_set, test_set, epochs=2, checkpoint=str(stopped), on_step=on_step)
    state = cnnrt.load_checkpoint(str(stopped), model())
    assert state.epochs_done == 0 and 3 <= state.steps_done_in_epoch < 12

    resumed = tmp_path / "resumed.safetensors"
    cnnrt.train(model(), train_set, test_set, epochs=2, checkpoint=str(resumed),
                resume=str(stopped))
    a, _ = read_safetensors(full)
    b, _ = read_safetensors(resumed)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].tobytes() == b[name].tobytes(), name


def test_callback_exception_stops_training(idx_dir):
    train_set, test_set = splits(idx_dir)
    epochs = []

    def on_epoch(report):
        epochs.append(report.epoch)
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        cnnrt.train(model(), train_set, test_set, epochs=3, on_epoch=on_epoch)
    assert epochs == [1]


def test_train_writes_tensorboard_events(idx_dir, tmp_path):
    """train(tensorboard=DIR) leaves one event file there: its first record is the file version,
    framed as TensorBoard reads it (tests/tensorboard_check.py reads a whole file with TensorBoard's
    own reader), and a record per scalar and kernel image of each epoch follows."""
    train_set, test_set = splits(idx_dir)
    logdir = tmp_path / "runs" / "a"
    cnnrt.train(model(), train_set, test_set, epochs=2, lr=0.05, tensorboard=str(logdir))
    files = os.listdir(logdir)
    assert len(files) == 1 and files[0].startswith("events.out.tfevents."), files
    data = (logdir / files[0]).read_bytes()
    records, at = [], 0
    while at < len(data):
        length = int.from_bytes(data[at:at + 8], "little")
        records.append(data[at + 12:at + 12 + length])
        at += 16 + length
    assert at == len(data)
    assert records[0].endswith(b"\x1a\x0dbrain.Event:2")
    assert len(records) == 1 + 2 * (6 + 1)  # the version, then per epoch 6 scalars and 1 image
    assert sum(b"conv1.weight" in r for r in records) == 2


def test_save_weights_holds_no_training_state(idx_dir, tmp_path):
    train_set, test_set = splits(idx_dir)
    m = model()
    cnnrt.train(m, train_set, test_set, epochs=1, lr=0.05)
    path = tmp_path / "w.safetensors"
    cnnrt.save_weights(str(path), m)
    tensors, _ = read_safetensors(path)
    assert sorted(tensors) == sorted(name for name, _ in m.parameters())
    for name, _ in m.parameters():
        np.testing.assert_array_equal(tensors[name], m.parameter(name))


def test_export_onnx_matches_logits_in_onnxruntime(tmp_path):
    """Model.export_onnx's file, run by onnxruntime, gives the model's logits (skipped without
    onnxruntime or an ONNX-enabled build; tests/onnx_check.py covers every preset)."""
    if not cnnrt.onnx_export_available():
        pytest.skip("this build has no ONNX export")
    ort = pytest.importorskip("onnxruntime")
    m = model(seed=5)
    path = tmp_path / "m.onnx"
    m.export_onnx(str(path))
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": x})
    np.testing.assert_allclose(logits, m.logits(x), atol=1e-4, rtol=1e-4)
    with pytest.raises(cnnrt.Error, match="missing"):
        cnnrt.export_onnx(m, str(tmp_path / "missing" / "m.onnx"))
    cnnrt.export_onnx(m, str(tmp_path / "p.onnx"), softmax=True)
    session = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(None, {"input": x})
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities.argmax(axis=1) == m.predict(x)).all()
