"""``paygate bench``: drive a running paygate over loopback HTTP the way merchants do, and prove nothing was lost.

Modules: :mod:`.options` (what a run does), :mod:`.stack` (the processes under test), :mod:`.loadgen` and
:mod:`.httpclient` (the load generator processes), :mod:`.scenarios` (payment flows), :mod:`.verify` (correctness),
:mod:`.floor` (the bare reference app), :mod:`.results` and :mod:`.report` (figures, table, JSON), :mod:`.run`
(the order of it all: :func:`paygate.bench.run.run_bench`). Method and figures: docs/performance.md.

Nothing is imported here, so the load generator and floor processes start without loading the rest.
"""
