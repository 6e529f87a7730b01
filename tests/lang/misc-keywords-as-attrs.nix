# keywords work as quoted attribute names
{ "if" = 1; "let" = 2; }."let"
