let unused = throw "never forced"; also = abort "nope"; in "fine"
