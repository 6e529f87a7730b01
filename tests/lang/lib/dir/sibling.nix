"sibling imported relative to dir/"
