#pragma once
// The whole public API of cnnrt in one include. Every header in include/cnnrt/ is listed here
// (tests/consumer/run.sh checks that none is missing).
#include "cnnrt/activation.hpp"
#include "cnnrt/checkpoint.hpp"
#include "cnnrt/dataset.hpp"
#include "cnnrt/device.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/export.hpp"
#include "cnnrt/filters.hpp"
#include "cnnrt/gradcheck.hpp"
#include "cnnrt/image.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"
#include "cnnrt/optimizer.hpp"
#include "cnnrt/safetensors.hpp"
#include "cnnrt/shape.hpp"
#include "cnnrt/trainer.hpp"
#include "cnnrt/version.hpp"
