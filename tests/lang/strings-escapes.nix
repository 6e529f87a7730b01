"tab\there\nnewline \\ backslash \" quote \$ dollar"
