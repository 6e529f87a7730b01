((x: { inherit x; }) 5).x
