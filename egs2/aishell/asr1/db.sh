# Where AISHELL-1 is, or where stage 1 downloads it: the directory that holds (or will hold)
# data_aishell/ and resource_aishell/ (~15 GB of archives, ~21 GB extracted). Relative paths
# are relative to this recipe directory. The environment variable AISHELL overrides it.
AISHELL=${AISHELL:-downloads}
