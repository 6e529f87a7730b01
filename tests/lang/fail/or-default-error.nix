{ }.missing or (throw "the default is forced when used")
