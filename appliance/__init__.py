"""The labeling appliance: a Django monolith for classified imagery on closed networks."""
