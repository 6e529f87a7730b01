{ ok = "ok"; broken = throw "lazy in imported file"; }
