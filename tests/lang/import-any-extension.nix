import ./lib/recipe.bottle
