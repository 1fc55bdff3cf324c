#pragma once
// Symbols are hidden by default (-fvisibility=hidden); the public API is marked with CNNRT_API.
#if defined(_WIN32)
#define CNNRT_API __declspec(dllexport)
#else
#define CNNRT_API __attribute__((visibility("default")))
#endif
