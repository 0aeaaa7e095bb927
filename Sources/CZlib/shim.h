// zlib (Debian/Ubuntu: zlib1g-dev), used to read gzip-compressed IDX files and zip archives.
#include <zlib.h>
