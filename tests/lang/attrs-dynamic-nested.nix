let k = "inner"; in { outer.${k}.leaf = true; outer.other = false; }
