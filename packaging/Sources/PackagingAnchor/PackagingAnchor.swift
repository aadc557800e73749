// Intentionally empty: see Package.swift. The packages are built from the components'
// own executable products (cox, node, relay, caravel).
