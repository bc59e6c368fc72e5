# Where JSUT 1.1 is, or where stage 1 downloads it: the directory that holds (or will hold)
# jsut_ver1.1/ (10 h of 48 kHz wav: ~3.5 GB; the zip is about as large). Relative paths are
# relative to this recipe directory. The environment variable JSUT overrides it.
JSUT=${JSUT:-downloads}
