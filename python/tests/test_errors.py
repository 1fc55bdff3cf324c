"""Library errors become cnnrt.Error / cnnrt.ValueError; bad NumPy input a ValueError naming the
expected shape, never a crash."""

import numpy as np
import pytest

import cnnrt


@pytest.fixture(scope="module")
def lenet():
    return cnnrt.Model(cnnrt.load_network("lenet5"), device="cpu", batch_size=4, threads=1)


def test_exception_classes():
    assert issubclass(cnnrt.Error, RuntimeError)
    assert issubclass(cnnrt.ValueError, ValueError)
    assert issubclass(cnnrt.ValueError, cnnrt.Error)


def test_unknown_preset_is_an_error_naming_it():
    with pytest.raises(cnnrt.Error, match="no-such-net"):
        cnnrt.load_network("no-such-net")


def test_bad_model_json():
    with pytest.raises(cnnrt.Error, match="my.json"):
        cnnrt.network_from_json('{"name": "x", "input": [1, 4, 4]}', "my.json")


def test_shapes_that_do_not_fit():
    net = cnnrt.Network((1, 4, 4), 10).conv2d(2, 7)
    with pytest.raises(cnnrt.Error, match="conv1"):
        cnnrt.Model(net)


def test_value_error_from_the_library():
    with pytest.raises(cnnrt.ValueError):
        cnnrt.Network((1, 4, 4), 2).batch_norm(momentum=2.0)


def test_bad_options():
    net = cnnrt.load_network("lenet5")
    with pytest.raises(ValueError, match="device"):
        cnnrt.Model(net, device="tpu")
    with pytest.raises(cnnrt.Error, match="lecun-uniform"):
        cnnrt.Model(net, init="bogus")


def test_wrong_dtype_names_the_expected_shape(lenet):
    x = np.zeros((2, 1, 28, 28), dtype=np.float64)
    with pytest.raises(ValueError, match=r"float32 \(N, 1, 28, 28\).*got float64 \(2, 1, 28, 28\)"):
        lenet.logits(x)


def test_wrong_shape_names_the_expected_shape(lenet):
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\).*got float32 \(2, 28, 28\)"):
        lenet.predict(np.zeros((2, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError, match=r"uint8 images \(N, 28, 28, 1\)"):
        lenet.predict(np.zeros((2, 3, 28, 28), dtype=np.uint8))


def test_bad_labels(lenet):
    x = np.zeros((2, 1, 28, 28), dtype=np.float32)
    with pytest.raises(ValueError, match=r"labels: expected an integer array of shape \(2,\)"):
        lenet.train_step(x, np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="labels"):
        lenet.train_step(x, np.zeros(2, dtype=np.float32))
    with pytest.raises(cnnrt.Error, match="outside"):
        lenet.train_step(x, np.array([0, 10]))


def test_batch_larger_than_compiled(lenet):
    x = np.zeros((5, 1, 28, 28), dtype=np.float32)
    with pytest.raises(cnnrt.Error, match="batch size 4"):
        lenet.train_step(x, np.zeros(5, dtype=np.int32))
    assert lenet.logits(x).shape == (5, 10)  # inference runs in slices instead


def test_parameters(lenet):
    with pytest.raises(cnnrt.Error, match="conv9.weight"):
        lenet.parameter("conv9.weight")
    with pytest.raises(ValueError, match=r"expected float32 \(6, 1, 5, 5\), got float32 \(6, 25\)"):
        lenet.set_parameter("conv1.weight", np.zeros((6, 25), dtype=np.float32))
    with pytest.raises(ValueError, match=r"got float64 \(6, 1, 5, 5\)"):
        lenet.set_parameter("conv1.weight", np.zeros((6, 1, 5, 5)))


def test_missing_checkpoint(lenet, tmp_path):
    with pytest.raises(cnnrt.Error, match="missing.safetensors"):
        cnnrt.load_checkpoint(str(tmp_path / "missing.safetensors"), lenet)
    with pytest.raises(cnnrt.Error, match="no-dir"):
        cnnrt.save_checkpoint(str(tmp_path / "no-dir" / "x.safetensors"), lenet)


def test_bad_dataset_arrays():
    with pytest.raises(ValueError, match="uint8"):
        cnnrt.Dataset(np.zeros((2, 4, 4), dtype=np.float32), np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="outside the 3 classes"):
        cnnrt.Dataset(np.zeros((2, 4, 4), dtype=np.uint8), np.array([0, 3]), classes=3)
    with pytest.raises(cnnrt.Error, match="train-images"):
        cnnrt.load_mnist_split("/nonexistent-dir", True)
