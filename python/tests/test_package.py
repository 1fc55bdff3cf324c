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
