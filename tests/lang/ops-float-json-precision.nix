# floats print with six significant digits, like C++ streams
[ 3.14159265358979 2.718281828 1234.5678 0.000123456789 99999.95 ]
