"""pytest-benchmark suites and paper-reproduction runs (`make bench`)."""
