#include "worker/sample/noise_schedule.h"
