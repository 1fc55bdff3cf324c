"""cnnrt: a CNN training runtime (C++/CUDA) for Python.

The names follow the C++ API (include/cnnrt/): ``load_network``, ``Model``, ``train``,
``save_checkpoint`` and ``load_checkpoint``. See ``help(cnnrt.Model)`` and docs/python.md.

    net = cnnrt.load_network("lenet5")
    m = cnnrt.Model(net, device="cpu", batch_size=64)
    m.predict(images)
"""

from ._cnnrt import *  # noqa: F401,F403
from ._cnnrt import (
    Dataset,
    __version__,
    find_cifar_kind,
    load_cifar_split,
    load_image_folder,
    load_mnist_split,
    looks_like_image_folder,
)


def load_dataset(directory, train=True, format="auto", input=None, labels="fine"):
    """The train or test split of ``directory``, read as `cnnrt train --data` reads it.

    format: ``auto`` (CIFAR when the directory holds CIFAR binary files, an image folder when it
    holds class folders, else MNIST-format IDX), ``idx``, ``cifar`` or ``folder``. labels:
    CIFAR-100's ``fine`` or ``coarse``. input: the (C, H, W) every folder image is fitted to
    (folders only; a Network's ``input``).
    """
    if format == "auto":
        if find_cifar_kind(directory):
            format = "cifar"
        elif looks_like_image_folder(directory):
            format = "folder"
        else:
            format = "idx"
    if format == "idx":
        return load_mnist_split(directory, train)
    if format == "cifar":
        return load_cifar_split(directory, train, labels)
    if format == "folder":
        if input is None:
            raise ValueError("load_dataset: image folders need input=(C, H, W)")
        train_set, test_set = load_image_folder(directory, tuple(input))
        return train_set if train else test_set
    raise ValueError(f"load_dataset: format must be auto, idx, cifar or folder, got {format!r}")
