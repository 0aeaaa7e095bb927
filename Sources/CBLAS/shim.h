// OpenBLAS's C interface (Debian/Ubuntu: libopenblas-dev). pkg-config "openblas" supplies the include path.
#include <cblas.h>
