//! The same random connection graph for our nodes and the baseline.

use rand::SeedableRng;
use rand::seq::SliceRandom;

/// Each node dials this many earlier nodes (fewer at the start): about twice as many
/// connections per node on average, and the graph is connected by construction.
pub const DIALS_PER_NODE: usize = 6;

/// Edges (i dials j, j < i) of a seeded random graph on `n` nodes.
pub fn edges(n: usize, seed: u64) -> Vec<(usize, usize)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut edges = Vec::new();
    for i in 1..n {
        let mut earlier: Vec<usize> = (0..i).collect();
        earlier.shuffle(&mut rng);
        for j in earlier.into_iter().take(DIALS_PER_NODE) {
            edges.push((i, j));
        }
    }
    edges
}

/// Connections per node.
pub fn degrees(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut degree = vec![0; n];
    for (i, j) in edges {
        degree[*i] += 1;
        degree[*j] += 1;
    }
    degree
}
