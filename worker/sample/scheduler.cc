#include "worker/sample/scheduler.h"
