"""Request bodies, validated before anyone is called: pure functions, each problem a 400 naming the field."""
