// GB_HOST_DEVICE marks a function that the host compiler and nvcc both compile
// (format codecs shared by the CPU and CUDA backends).
#pragma once

#if defined(__CUDACC__)
#define GB_HOST_DEVICE __host__ __device__
#else
#define GB_HOST_DEVICE
#endif
