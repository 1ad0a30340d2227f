// Include MPI through this header: it switches off Open MPI's deprecated C++ bindings (we use the C API), whose
// symbols would otherwise need an extra library at link time.
#pragma once
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>
