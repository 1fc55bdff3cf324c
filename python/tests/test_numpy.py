"""NumPy round trips, and logits checked against a NumPy computation of a dense-only network."""

import numpy as np
import pytest

import cnnrt

# float32 sums of a few dozen products, computed in another order by NumPy.
LOGIT_RTOL = 1e-5
LOGIT_ATOL = 1e-5
# Cross-entropy gradient: softmax of float32 logits, then the sums of the chain rule.
GRAD_RTOL = 1e-4
GRAD_ATOL = 1e-6


def dense_model(batch_size=4, input_shape=(2, 3, 3)):
    net = cnnrt.Network(input_shape, 4, name="tiny").dense(6, name="fc1").relu().dense(4, name="fc2")
    return cnnrt.Model(net, device="cpu", batch_size=batch_size, seed=5, threads=1)


def randomise(model, rng):
    for name, shape in model.parameters():
        model.set_parameter(name, rng.standard_normal(shape).astype(np.float32))


def numpy_logits(model, x):
    h = x.reshape(len(x), -1).astype(np.float64)
    w1, b1 = model.parameter("fc1.weight"), model.parameter("fc1.bias")
    w2, b2 = model.parameter("fc2.weight"), model.parameter("fc2.bias")
    h = np.maximum(h @ w1.T.astype(np.float64) + b1, 0.0)
    return h @ w2.T.astype(np.float64) + b2


def test_parameters_round_trip():
    model = dense_model()
    assert model.parameters() == [("fc1.weight", [6, 18]), ("fc1.bias", [6]),
                                  ("fc2.weight", [4, 6]), ("fc2.bias", [4])]
    rng = np.random.default_rng(1)
    values = rng.standard_normal((6, 18)).astype(np.float32)
    model.set_parameter("fc1.weight", values)
    back = model.parameter("fc1.weight")
    assert back.dtype == np.float32 and back.shape == (6, 18)
    assert back.tobytes() == values.tobytes()
    back[:] = 0  # a copy: the model keeps its values
    assert model.parameter("fc1.weight").tobytes() == values.tobytes()
    # A non-contiguous array is copied in its logical (C) order.
    transposed = np.ascontiguousarray(values.T).T
    assert not transposed.flags.c_contiguous
    model.set_parameter("fc1.weight", transposed)
    assert model.parameter("fc1.weight").tobytes() == values.tobytes()


def test_lenet_parameter_shapes_are_pytorch_shapes():
    model = cnnrt.Model(cnnrt.load_network("lenet5"), device="cpu", batch_size=2, threads=1)
    shapes = dict(model.parameters())
    assert shapes["conv1.weight"] == [6, 1, 5, 5]
    assert shapes["fc1.weight"] == [120, 400]
    assert model.parameter("conv2.weight").shape == (16, 6, 5, 5)
    assert model.parameter_count == sum(int(np.prod(s)) for s in shapes.values())


@pytest.mark.parametrize("device", ["cpu", "reference"])
def test_logits_match_numpy(device):
    rng = np.random.default_rng(2)
    model = dense_model()
    randomise(model, rng)
    model = model if device == "cpu" else _copy_to(model, device)
    x = rng.standard_normal((10, 2, 3, 3)).astype(np.float32)  # more than one batch of 4
    logits = model.logits(x)
    assert logits.shape == (10, 4) and logits.dtype == np.float32
    expected = numpy_logits(model, x)
    assert np.all(np.abs(logits - expected) <= LOGIT_ATOL + LOGIT_RTOL * np.abs(expected))
    np.testing.assert_array_equal(model.predict(x), np.argmax(expected, axis=1))
    # A non-contiguous view of the same values gives the same bits.
    view = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    assert not view.flags.c_contiguous
    assert model.logits(view).tobytes() == logits.tobytes()


def _copy_to(model, device):
    other = cnnrt.Model(model.network, device=device, batch_size=model.batch_size)
    for name, _ in model.parameters():
        other.set_parameter(name, model.parameter(name))
    return other


def test_uint8_images_are_normalised_with_the_models_values():
    rng = np.random.default_rng(3)
    model = dense_model(input_shape=(3, 2, 2))
    randomise(model, rng)
    mean, std = [0.5, 0.25, 0.125], [0.2, 0.4, 0.8]
    model.normalization = (mean, std)
    images = rng.integers(0, 256, size=(5, 2, 2, 3)).astype(np.uint8)  # N, H, W, C
    expected_input = (images / 255.0 - np.array(mean)) / np.array(std)
    expected_input = expected_input.transpose(0, 3, 1, 2)  # N, C, H, W
    expected = numpy_logits(model, expected_input)
    logits = model.logits(images)
    assert np.all(np.abs(logits - expected) <= LOGIT_ATOL + LOGIT_RTOL * np.abs(expected))
    # One image (H, W, C) is a batch of one. (Not bit-equal to its row of the batch of five: the
    # fast CPU path's sgemm picks its kernel by shape, so the rounding may differ.)
    one = model.logits(images[2])
    assert one.shape == (1, 4)
    assert np.all(np.abs(one - expected[2:3]) <= LOGIT_ATOL + LOGIT_RTOL * np.abs(expected[2:3]))


def test_gradient_matches_numpy():
    rng = np.random.default_rng(4)
    model = dense_model()
    randomise(model, rng)
    x = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    labels = np.array([0, 3, 1, 3])
    stats = model.forward_backward(x, labels)
    # NumPy: mean softmax cross-entropy over the batch; dlogits = (softmax - onehot) / n.
    z = numpy_logits(model, x)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(4), labels])
    assert abs(stats.loss_sum - loss.sum()) <= 1e-4 + 1e-5 * loss.sum()
    dz = (p - np.eye(4)[labels]) / 4
    h = np.maximum(x.reshape(4, -1) @ model.parameter("fc1.weight").T.astype(np.float64)
                   + model.parameter("fc1.bias"), 0.0)
    grad_w2 = model.gradient("fc2.weight")
    assert np.abs(grad_w2).max() > 0
    expected = dz.T @ h
    assert np.all(np.abs(grad_w2 - expected) <= GRAD_ATOL + GRAD_RTOL * np.abs(expected))
    np.testing.assert_allclose(model.gradient("fc2.bias"), dz.sum(axis=0),
                               rtol=GRAD_RTOL, atol=GRAD_ATOL)


def test_dataset_from_numpy_round_trip():
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(7, 4, 5, 3)).astype(np.uint8)  # N, H, W, C
    labels = rng.integers(0, 3, size=7)
    data = cnnrt.Dataset(images, labels, classes=3, class_names=["a", "b", "c"])
    assert (data.count, data.channels, data.height, data.width) == (7, 3, 4, 5)
    np.testing.assert_array_equal(data.images, images.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(data.labels, labels)
    assert data.class_names == ["a", "b", "c"] and len(data) == 7
    chw = cnnrt.Dataset(images.transpose(0, 3, 1, 2), labels, classes=3, channels_first=True)
    np.testing.assert_array_equal(chw.images, data.images)
    assert data.take(2).count == 2
