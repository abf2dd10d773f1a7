#include "converge/telemetry.h"

namespace converge {

Histogram MakeFirstPushAgeHistogram() {
  // Cloudflare minutes settle after three to five minutes, and the default
  // window TTL is fifteen; the buckets resolve that range by the minute.
  return Histogram({60, 120, 180, 240, 300, 360, 420, 480, 600, 900, 1200,
                    1800, 3600, 7200, 86400});
}

Histogram MakeCorrectionSizeHistogram() {
  return Histogram({0.0001, 0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 10});
}

}  // namespace converge
