"""The package ships type stubs and documents every call."""

import pathlib
import pydoc

import cnnrt


def test_stubs_ship_with_the_module():
    package = pathlib.Path(cnnrt.__file__).parent
    stub = (package / "_cnnrt.pyi").read_text()
    for name in ("class Model", "def train_step", "def load_network", "def train(",
                 "def save_checkpoint", "class Dataset"):
        assert name in stub, name
    assert (package / "py.typed").exists()


def test_help_documents_each_call():
    text = pydoc.render_doc(cnnrt.Model, renderer=pydoc.plaintext)
    for call in ("logits", "predict", "train_step", "evaluate", "parameter", "set_parameter",
                 "gradient", "parameters"):
        assert f"{call}(" in text, call
    assert "ValueError naming the expected shape" in text
    assert "Ctrl-C" in cnnrt.train.__doc__


def test_presets_and_version():
    assert {"lenet5", "lenet5-classic", "alexnet"} <= set(cnnrt.preset_names())
    assert cnnrt.__version__.count(".") == 2
    net = cnnrt.load_network("lenet5")
    assert net.input == (1, 28, 28) and net.classes == 10
    assert net.infer_shapes()[-1] == (10, 1, 1)
    assert cnnrt.network_from_json(net.to_json()).to_json() == net.to_json()
    assert [layer["name"] for layer in net.layers][:3] == ["conv1", "relu1", "pool1"]


def test_load_dataset_reads_what_the_cli_reads(idx_dir):
    data = cnnrt.load_dataset(str(idx_dir), train=False)  # auto: IDX here
    assert (data.count, data.channels, data.height, data.width) == (128, 1, 28, 28)
    assert data.images.tobytes() == cnnrt.load_mnist_split(str(idx_dir), False).images.tobytes()
    mean, std = cnnrt.compute_normalization(data)
    pixels = data.images / 255.0
    assert abs(mean[0] - pixels.mean()) < 1e-6 and abs(std[0] - pixels.std()) < 1e-6


def test_builder_matches_the_preset():
    built = (cnnrt.Network((1, 28, 28), 10, name="lenet5")
             .conv2d(6, 5, padding="same", name="conv1").relu().max_pool(2, 2)
             .conv2d(16, 5).relu().max_pool(2, 2)
             .dense(120).relu().dense(84).relu().dense(10))
    preset = cnnrt.load_network("lenet5")
    assert built.infer_shapes() == preset.infer_shapes()
    a = cnnrt.Model(built, batch_size=2, seed=4)
    b = cnnrt.Model(preset, batch_size=2, seed=4)
    assert [n for n, _ in a.parameters()] == [n for n, _ in b.parameters()]
    assert a.parameter("fc1.weight").tobytes() == b.parameter("fc1.weight").tobytes()
