// Fetches one task into owning Observations, for tests that compare what a
// source returned.

#ifndef CONVERGE_TESTS_TESTING_FETCH_ALL_H_
#define CONVERGE_TESTS_TESTING_FETCH_ALL_H_

#include <vector>

#include "absl/status/status.h"
#include "converge/observation_batch.h"
#include "converge/source.h"

namespace converge::harness {

// Calls source.Fetch(task) and appends what it returned to `out`, also when
// the fetch failed (a failed fetch should return nothing).
inline absl::Status FetchAll(Source& source, const FetchTask& task,
                             std::vector<Observation>* out) {
  ObservationBatch batch;
  const absl::Status status = source.Fetch(task, &batch);
  batch.AppendTo(out);
  return status;
}

}  // namespace converge::harness

#endif  // CONVERGE_TESTS_TESTING_FETCH_ALL_H_
