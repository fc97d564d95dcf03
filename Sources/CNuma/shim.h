// libnuma (apt: libnuma-dev). Included through this header so the module
// has one entry point; libnuma's functions import into Swift as they are.
#include <numa.h>
