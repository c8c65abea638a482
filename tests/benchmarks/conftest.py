from lfxbench.timing import steady_allocator

# Time the work, not the page faults glibc's history-dependent thresholds add (as a run does).
steady_allocator()
