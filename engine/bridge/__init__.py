"""The Bridge: production logs into training data, production failures into new golden dataset versions."""
