{ name, suffix ? "!" }: "hello ${name}${suffix}"
