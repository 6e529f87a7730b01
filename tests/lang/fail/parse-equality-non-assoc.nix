true == true == true
