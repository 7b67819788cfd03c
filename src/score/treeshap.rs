//! Exact path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, Algorithm 2) over forust's
//! trained trees, converted once at load into one flat node array.
//!
//! Hand-written explainer, not learner: forust's own `predict_contributions` clones its path
//! vector at every node and builds the children list on the heap, which made one lead's
//! explanation cost several times the budget. This walks the same trees in the same
//! order with the same `f32` arithmetic, so its values equal forust's bit for bit (a test
//! compares them on many rows), without allocating per node.
//!
//! A leaf's path state in Algorithm 2 depends on the row only through which edge on the way
//! down was the row's own ("hot") one: for a leaf at depth d there are 2^d cases. For shallow
//! trees (within [`TABLE_BUDGET`]) every case's contributions are worked out at load with the
//! same operations, and explaining a row is then a walk in forust's order that adds the
//! looked-up values — the same numbers summed in the same order, at a fraction of the cost.

use forust_ml::gradientbooster::GradientBooster;
use forust_ml::tree::Tree;

/// One tree node; children are indices into [`Explainer::nodes`].
#[derive(Debug, Clone, Copy)]
struct Node {
    split_value: f64,
    /// The column a split reads (unused for a leaf).
    feature: u32,
    leaf: bool,
    /// A separate third child for missing values.
    three_way: bool,
    left: u32,
    right: u32,
    missing: u32,
    /// The leaf value (log-odds).
    weight: f32,
    /// Training cover (sum of hessians): the share of rows reaching a child is its cover
    /// over its parent's.
    cover: f32,
    /// A leaf of a tabulated tree: where its cases start in [`Explainer::table`], where its
    /// columns (the distinct features on its path, in path order) start in
    /// [`Explainer::columns`], and how many there are.
    table: u32,
    columns: u32,
    unique: u32,
}

/// Most table entries one model keeps (4 bytes each: 4 MiB); deeper or more trees than fit
/// are explained by the recursion instead.
pub const TABLE_BUDGET: usize = 1 << 20;
/// Leaves deeper than this are never tabulated (2^depth cases each).
const TABLE_DEPTH: usize = 10;
/// Most splits a tree may have for its whole walk to be worked out at load for every
/// combination of its splits' decisions (2^splits walks; a depth-3 tree has 7).
const UNROLL_SPLITS: usize = 8;
/// Most (column, value) entries the unrolled walks of one model keep (8 bytes each: 2 MiB).
pub const UNROLL_BUDGET: usize = 1 << 18;

/// A tree whose walks are worked out for every combination of its splits' decisions.
#[derive(Debug, Clone, Copy)]
struct Unrolled {
    /// Where its splits start in [`Explainer::splits`], and how many.
    splits: u32,
    count: u32,
    /// Where its walks' starts begin in [`Explainer::bounds`].
    bounds: u32,
}

/// One element of a unique path (the paper's `m`).
#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    feature: u32,
    zero_fraction: f32,
    one_fraction: f32,
    pweight: f32,
}

/// The root's placeholder path element names no column.
const NO_FEATURE: u32 = u32::MAX;

/// The trees a booster predicts with, flattened for explaining single rows.
#[derive(Debug, Clone)]
pub struct Explainer {
    nodes: Vec<Node>,
    /// Each tree's root and whether its leaves are tabulated.
    roots: Vec<(u32, bool)>,
    /// Each tabulated leaf's values, case after case (`unique` values a case): a leaf's
    /// columns are the same in every case, so they are kept once, in `columns`.
    table: Vec<f32>,
    columns: Vec<u32>,
    /// Per tree, when its walk is unrolled: where its splits start in `splits` and how many
    /// there are, and where its walks start in `bounds`.
    unrolled: Vec<Option<Unrolled>>,
    /// The split nodes of unrolled trees; a split's place in its tree's run is its bit in
    /// the combination of decisions that picks a walk.
    splits: Vec<u32>,
    /// Each walk's start in `walks` (one past the last walk: the end).
    bounds: Vec<u32>,
    /// Every unrolled walk's additions, in the order [`Explainer::walk`] makes them.
    walks: Vec<(u32, f32)>,
    /// The deepest leaf's depth (root = 0), which bounds the path buffer.
    depth: usize,
    /// forust's missing-value marker (NaN unless set otherwise).
    missing: f64,
}

impl Explainer {
    /// Fails (naming the tree) on a tree whose children point outside it or loop, which
    /// only a damaged model file has.
    pub fn new(booster: &GradientBooster) -> Result<Self, String> {
        Self::with_table_budget(booster, TABLE_BUDGET)
    }

    /// [`Explainer::new`] with at most `budget` table entries (0: recursion only).
    pub fn with_table_budget(booster: &GradientBooster, budget: usize) -> Result<Self, String> {
        let used = booster
            .prediction_iteration
            .unwrap_or(booster.trees.len())
            .min(booster.trees.len());
        let mut out = Self {
            nodes: Vec::new(),
            roots: Vec::with_capacity(used),
            table: Vec::new(),
            columns: Vec::new(),
            unrolled: Vec::with_capacity(used),
            splits: Vec::new(),
            bounds: Vec::new(),
            walks: Vec::new(),
            depth: 0,
            missing: booster.missing,
        };
        for (i, tree) in booster.trees[..used].iter().enumerate() {
            out.add(tree, budget)
                .map_err(|reason| format!("tree {i}: {reason}"))?;
        }
        Ok(out)
    }

    fn add(&mut self, tree: &Tree, budget: usize) -> Result<(), String> {
        let len = tree.nodes.len();
        if len == 0 {
            return Err("no nodes".into());
        }
        // Depth by walking from the root, which also proves every child is inside the tree
        // and the walk ends (a node is visited at most once).
        let mut depth = vec![usize::MAX; len];
        let mut stack = vec![(0usize, 0usize)];
        while let Some((i, d)) = stack.pop() {
            if depth[i] != usize::MAX {
                return Err(format!("node {i} is reached twice"));
            }
            depth[i] = d;
            self.depth = self.depth.max(d);
            let n = &tree.nodes[i];
            if n.is_leaf {
                continue;
            }
            let mut children = vec![n.left_child, n.right_child];
            if n.has_missing_branch() {
                children.push(n.missing_node);
            }
            for c in children {
                if c >= len {
                    return Err(format!("node {i} has child {c} of {len}"));
                }
                stack.push((c, d + 1));
            }
        }
        // Cases × columns, bounded by depth per case.
        let cells: usize = tree
            .nodes
            .iter()
            .zip(&depth)
            .filter(|(n, _)| n.is_leaf)
            .map(|(_, d)| (*d).min(TABLE_DEPTH + 1) << (*d).min(TABLE_DEPTH + 1))
            .sum();
        let tabulate =
            depth.iter().all(|d| *d <= TABLE_DEPTH) && self.table.len() + cells <= budget;
        let base = self.nodes.len() as u32;
        self.roots.push((base, tabulate));
        let at = |i: usize| base + i.min(len - 1) as u32;
        for n in &tree.nodes {
            self.nodes.push(Node {
                split_value: n.split_value,
                feature: n.split_feature as u32,
                leaf: n.is_leaf,
                three_way: !n.is_leaf && n.has_missing_branch(),
                left: at(n.left_child),
                right: at(n.right_child),
                missing: at(n.missing_node),
                weight: n.weight_value,
                cover: n.hessian_sum,
                table: 0,
                columns: 0,
                unique: 0,
            });
        }
        let mut unrolled = None;
        if tabulate {
            let mut chain = Vec::new();
            let mut path = Vec::new();
            self.tabulate(base, &mut chain, &mut path);
            unrolled = self.unroll(base, len, budget);
        }
        self.unrolled.push(unrolled);
        Ok(())
    }

    /// Works out a tabulated tree's walk for every combination of its splits' decisions,
    /// when it has few splits, none of them three-way, and the walks fit the budget. A row's
    /// explanation is then its splits' decisions and one run of additions.
    fn unroll(&mut self, base: u32, len: usize, budget: usize) -> Option<Unrolled> {
        let nodes = &self.nodes[base as usize..base as usize + len];
        if nodes.iter().any(|n| n.three_way) {
            return None;
        }
        let splits: Vec<u32> = (0..len as u32)
            .filter(|i| !nodes[*i as usize].leaf)
            .map(|i| base + i)
            .collect();
        let per_walk: usize = nodes
            .iter()
            .filter(|n| n.leaf)
            .map(|n| n.unique as usize)
            .sum();
        if splits.len() > UNROLL_SPLITS
            || budget == 0
            || self.walks.len() + (per_walk << splits.len()) > UNROLL_BUDGET
        {
            return None;
        }
        let out = Unrolled {
            splits: self.splits.len() as u32,
            count: splits.len() as u32,
            bounds: self.bounds.len() as u32,
        };
        let mut walks = Vec::with_capacity(per_walk << splits.len());
        for combo in 0..1u32 << splits.len() {
            self.bounds
                .push(self.walks.len() as u32 + walks.len() as u32);
            let right_first = |node: u32| {
                splits
                    .iter()
                    .position(|s| *s == node)
                    .is_some_and(|k| combo >> k & 1 == 1)
            };
            self.walk_decided(base, 0, 0, &right_first, &mut walks);
        }
        self.walks.extend(walks);
        self.bounds.push(self.walks.len() as u32);
        self.splits.extend(splits);
        Some(out)
    }

    /// [`Explainer::walk`] with each split's own child decided by `right_first` instead of
    /// by a row, recording the additions instead of making them.
    fn walk_decided(
        &self,
        index: u32,
        case: u32,
        depth: u32,
        right_first: &impl Fn(u32) -> bool,
        walks: &mut Vec<(u32, f32)>,
    ) {
        let node = &self.nodes[index as usize];
        if node.leaf {
            let n = node.unique as usize;
            let at = node.table as usize + case as usize * n;
            let columns = &self.columns[node.columns as usize..node.columns as usize + n];
            walks.extend(
                columns
                    .iter()
                    .copied()
                    .zip(self.table[at..at + n].iter().copied()),
            );
            return;
        }
        // As `ordered_children` orders a two-way split's children.
        let children = if right_first(index) {
            [node.right, node.left]
        } else {
            [node.left, node.right]
        };
        for (i, &child) in children.iter().enumerate() {
            let own = if i == 0 { 1 << depth } else { 0 };
            self.walk_decided(child, case | own, depth + 1, right_first, walks);
        }
    }

    /// Works out every case of every leaf below `index` (`chain`: the edges from the root).
    fn tabulate(&mut self, index: u32, chain: &mut Vec<(u32, u32)>, path: &mut Vec<PathElement>) {
        let node = self.nodes[index as usize];
        if !node.leaf {
            let mut children = vec![node.left, node.right];
            if node.three_way {
                children.push(node.missing);
            }
            for child in children {
                chain.push((index, child));
                self.tabulate(child, chain, path);
                chain.pop();
            }
            return;
        }
        let start = self.table.len();
        let columns = self.columns.len();
        let mut unique = 0;
        for case in 0..1u32 << chain.len() {
            let d = self.follow(chain, case, path);
            if case == 0 {
                // The distinct features and their order depend on the path, not the case.
                unique = d as u32;
                self.columns.extend(path[1..=d].iter().map(|e| e.feature));
            }
            for i in 1..=d {
                let w = unwound_sum(path, d, i);
                let e = path[i];
                self.table
                    .push(w * (e.one_fraction - e.zero_fraction) * node.weight);
            }
        }
        let leaf = &mut self.nodes[index as usize];
        leaf.table = start as u32;
        leaf.columns = columns as u32;
        leaf.unique = unique;
    }

    /// The path state Algorithm 2 reaches at the end of `chain` when the edges whose bit is
    /// set in `case` are the row's own: [`Explainer::recurse`]'s steps along one branch.
    /// Returns the unique depth.
    fn follow(&self, chain: &[(u32, u32)], case: u32, path: &mut Vec<PathElement>) -> usize {
        path.clear();
        path.resize(chain.len() + 2, PathElement::default());
        let mut d = 0;
        extend(path, 0, 1.0, 1.0, NO_FEATURE);
        for (k, &(parent, child)) in chain.iter().enumerate() {
            let node = &self.nodes[parent as usize];
            let mut incoming_zero = 1.0;
            let mut incoming_one = 1.0;
            if let Some(at) = path[..=d].iter().position(|e| e.feature == node.feature) {
                incoming_zero = path[at].zero_fraction;
                incoming_one = path[at].one_fraction;
                unwind(path, d, at);
                d -= 1;
            }
            let zero = (self.nodes[child as usize].cover / node.cover) * incoming_zero;
            let one = if case >> k & 1 == 1 {
                incoming_one
            } else {
                0.0
            };
            d += 1;
            extend(path, d, zero, one, node.feature);
        }
        d
    }

    /// Adds a tabulated tree's values for `row`, leaves in forust's order.
    fn walk(&self, row: &[f64], out: &mut [f64], index: u32, case: u32, depth: u32) {
        let node = &self.nodes[index as usize];
        if node.leaf {
            let n = node.unique as usize;
            let at = node.table as usize + case as usize * n;
            let columns = &self.columns[node.columns as usize..node.columns as usize + n];
            for (&f, &v) in columns.iter().zip(&self.table[at..at + n]) {
                if let Some(c) = out.get_mut(f as usize) {
                    *c += f64::from(v);
                }
            }
            return;
        }
        let (children, n) = self.ordered_children(node, row);
        for (i, &child) in children[..n].iter().enumerate() {
            let own = if i == 0 { 1 << depth } else { 0 };
            self.walk(row, out, child, case | own, depth + 1);
        }
    }

    /// A node's children, the row's own first, in forust's order (shapley.rs
    /// `get_hot_cold_children`): the values are summed in it.
    fn ordered_children(&self, node: &Node, row: &[f64]) -> ([u32; 3], usize) {
        let hot = self.hot_child(node, row);
        if node.three_way {
            if hot == node.right {
                ([node.right, node.left, node.missing], 3)
            } else if hot == node.left {
                ([node.left, node.right, node.missing], 3)
            } else {
                ([node.missing, node.left, node.right], 3)
            }
        } else if hot == node.right {
            ([node.right, node.left, 0], 2)
        } else {
            ([node.left, node.right, 0], 2)
        }
    }

    /// Adds each column's Shapley contribution to the row's log-odds into `out`
    /// (`out.len()` = the row's length). The expected value is not included.
    pub fn contributions(&self, row: &[f64], out: &mut [f64]) {
        // Level k of the recursion keeps its path (at most k + 1 elements) after level k − 1's.
        let levels = self.depth + 2;
        let mut path = Vec::new();
        for (&(root, tabulated), unrolled) in self.roots.iter().zip(&self.unrolled) {
            if let Some(u) = unrolled {
                let mut combo = 0usize;
                let splits = &self.splits[u.splits as usize..(u.splits + u.count) as usize];
                for (k, &s) in splits.iter().enumerate() {
                    let node = &self.nodes[s as usize];
                    if self.hot_child(node, row) == node.right {
                        combo |= 1 << k;
                    }
                }
                let at = u.bounds as usize + combo;
                let run = self.bounds[at] as usize..self.bounds[at + 1] as usize;
                for &(f, v) in &self.walks[run] {
                    if let Some(c) = out.get_mut(f as usize) {
                        *c += f64::from(v);
                    }
                }
            } else if tabulated {
                self.walk(row, out, root, 0, 0);
            } else {
                path.resize(levels * (levels + 1) / 2, PathElement::default());
                self.recurse(row, out, root, &mut path, 0, 1.0, 1.0, NO_FEATURE);
            }
        }
    }

    /// The child a row's value leads to, as forust's `Node::get_child_idx` decides.
    fn hot_child(&self, node: &Node, row: &[f64]) -> u32 {
        // A column the row lacks counts as missing (the model validates widths at load).
        let v = row.get(node.feature as usize).copied().unwrap_or(f64::NAN);
        let missing = if self.missing.is_nan() {
            v.is_nan()
        } else {
            v == self.missing || v.is_nan()
        };
        if missing {
            node.missing
        } else if v < node.split_value {
            node.left
        } else {
            node.right
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn recurse(
        &self,
        row: &[f64],
        out: &mut [f64],
        index: u32,
        path: &mut [PathElement],
        mut unique_depth: usize,
        parent_zero_fraction: f32,
        parent_one_fraction: f32,
        parent_feature: u32,
    ) {
        let node = &self.nodes[index as usize];
        extend(
            path,
            unique_depth,
            parent_zero_fraction,
            parent_one_fraction,
            parent_feature,
        );
        if node.leaf {
            for i in 1..=unique_depth {
                let w = unwound_sum(path, unique_depth, i);
                let e = path[i];
                if let Some(c) = out.get_mut(e.feature as usize) {
                    *c += f64::from(w * (e.one_fraction - e.zero_fraction) * node.weight);
                }
            }
            return;
        }
        let (children, n) = self.ordered_children(node, row);
        let mut incoming_zero = 1.0;
        let mut incoming_one = 1.0;
        let seen = path[..=unique_depth]
            .iter()
            .position(|e| e.feature == node.feature);
        let own = unique_depth + 1;
        if let Some(at) = seen {
            incoming_zero = path[at].zero_fraction;
            incoming_one = path[at].one_fraction;
            unwind(path, unique_depth, at);
            unique_depth -= 1;
        }
        let (mine, rest) = path.split_at_mut(own);
        for (i, &child) in children[..n].iter().enumerate() {
            let zero = (self.nodes[child as usize].cover / node.cover) * incoming_zero;
            let one = if i == 0 { incoming_one } else { 0.0 };
            rest[..=unique_depth].copy_from_slice(&mine[..=unique_depth]);
            self.recurse(
                row,
                out,
                child,
                rest,
                unique_depth + 1,
                zero,
                one,
                node.feature,
            );
        }
    }
}

// The three path operations below are forust's (shapley.rs), term for term, so the `f32`
// rounding is the same.

fn extend(path: &mut [PathElement], d: usize, zero: f32, one: f32, feature: u32) {
    path[d] = PathElement {
        feature,
        zero_fraction: zero,
        one_fraction: one,
        pweight: if d == 0 { 1.0 } else { 0.0 },
    };
    for i in (0..d).rev() {
        path[i + 1].pweight += (one * path[i].pweight * (i + 1) as f32) / (d + 1) as f32;
        path[i].pweight = (zero * path[i].pweight * (d - i) as f32) / (d + 1) as f32;
    }
}

fn unwind(path: &mut [PathElement], d: usize, at: usize) {
    let one = path[at].one_fraction;
    let zero = path[at].zero_fraction;
    let mut next_one_portion = path[d].pweight;
    for i in (0..d).rev() {
        if one != 0.0 {
            let tmp = path[i].pweight;
            path[i].pweight = (next_one_portion * (d + 1) as f32) / ((i + 1) as f32 * one);
            next_one_portion = tmp - (path[i].pweight * zero * (d - i) as f32) / (d + 1) as f32;
        } else {
            path[i].pweight = (path[i].pweight * (d + 1) as f32) / (zero * (d - i) as f32);
        }
    }
    for i in at..d {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

fn unwound_sum(path: &[PathElement], d: usize, at: usize) -> f32 {
    let one = path[at].one_fraction;
    let zero = path[at].zero_fraction;
    let mut next_one_portion = path[d].pweight;
    let mut total = 0.0;
    for i in (0..d).rev() {
        if one != 0.0 {
            let tmp = (next_one_portion * (d + 1) as f32) / ((i + 1) as f32 * one);
            total += tmp;
            next_one_portion = path[i].pweight - tmp * zero * ((d - i) as f32 / (d + 1) as f32);
        } else if zero != 0.0 {
            total += (path[i].pweight / zero) / ((d - i) as f32 / (d + 1) as f32);
        }
        // Both fractions zero: forust asserts the weight is zero too; it adds nothing.
    }
    total
}

#[cfg(test)]
mod tests {
    use forust_ml::gradientbooster::{ContributionsMethod, GradientBooster};
    use forust_ml::Matrix;

    use super::Explainer;

    /// Rows with interactions, a skewed column and (optionally) missing values.
    fn data(rows: usize, cols: usize, missing: bool, seed: u64) -> (Vec<Vec<f64>>, Vec<f64>) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut x = Vec::with_capacity(rows);
        let mut y = Vec::with_capacity(rows);
        for _ in 0..rows {
            let mut r: Vec<f64> = (0..cols).map(|_| rng.f64()).collect();
            r[1] = (r[1] * 6.0).exp();
            r[2] = (r[2] * 4.0).floor();
            if missing {
                for v in r.iter_mut().skip(3).step_by(2) {
                    if rng.f64() < 0.2 {
                        *v = f64::NAN;
                    }
                }
            }
            let v = |i: usize| if r[i].is_nan() { 0.5 } else { r[i] };
            let z = 2.0 * (v(0) - 0.5) * v(3) + (r[1].ln() - 3.0).abs() * 0.4
                - if r[2] == 2.0 { 1.0 } else { 0.0 }
                + (v(5) * 6.0).sin();
            y.push(f64::from(u8::from(rng.f64() < 1.0 / (1.0 + (-z).exp()))));
            x.push(r);
        }
        (x, y)
    }

    fn booster(x: &[Vec<f64>], y: &[f64], depth: usize, three_way: bool) -> GradientBooster {
        let cols = x[0].len();
        let flat: Vec<f64> = (0..cols)
            .flat_map(|c| x.iter().map(move |r| r[c]))
            .collect();
        let mut b = GradientBooster::default()
            .set_iterations(60)
            .set_learning_rate(0.3)
            .set_max_depth(depth)
            .set_parallel(false)
            .set_create_missing_branch(three_way);
        let w = vec![1.0; y.len()];
        b.fit(&Matrix::new(&flat, y.len(), cols), y, &w, None)
            .expect("the test data trains");
        b
    }

    fn library(b: &GradientBooster, row: &[f64]) -> Vec<f64> {
        b.predict_contributions(
            &Matrix::new(row, 1, row.len()),
            ContributionsMethod::Shapley,
            false,
        )
    }

    #[test]
    fn equals_forusts_shapley_contributions_on_many_rows() {
        for (depth, missing, three_way) in [
            (3, false, false),
            (3, true, false),
            (4, false, false),
            (6, true, false),
            (5, true, true),
            (3, false, true),
        ] {
            let (x, y) = data(3_000, 8, missing, depth as u64);
            let b = booster(&x, &y, depth, three_way);
            let tabulated = Explainer::new(&b).expect("forust's trees convert");
            assert!(
                tabulated.roots.iter().any(|r| r.1),
                "some trees fit the table"
            );
            // Two-way trees of depth 3 have their walks worked out for every decision.
            if depth == 3 && !three_way {
                assert!(tabulated.unrolled.iter().any(Option::is_some));
            }
            if three_way {
                assert!(tabulated.unrolled.iter().all(Option::is_none));
            }
            let recursive = Explainer::with_table_budget(&b, 0).unwrap();
            assert!(recursive.roots.iter().all(|r| !r.1));
            assert!(recursive.unrolled.iter().all(Option::is_none));
            // Part tabulated, part recursive: the trees past the budget are walked.
            let mixed = Explainer::with_table_budget(&b, tabulated.table.len() / 2).unwrap();
            assert!(mixed.roots.iter().any(|r| r.1) && mixed.roots.iter().any(|r| !r.1));
            for e in [tabulated, recursive, mixed] {
                compare(&b, &e, depth, missing, three_way);
            }
        }
    }

    fn compare(b: &GradientBooster, e: &Explainer, depth: usize, missing: bool, three_way: bool) {
        {
            assert!(e.depth >= 2, "trees this shallow test little");
            assert_eq!(
                e.nodes.iter().any(|n| n.three_way),
                three_way,
                "forust's separate missing branches are walked only if it made some"
            );
            let (rows, _) = data(1_000, 8, missing, 99 + depth as u64);
            let mut worst = 0.0f64;
            for row in &rows {
                let expected = library(b, row);
                let mut got = vec![0.0; row.len()];
                e.contributions(row, &mut got);
                for (g, want) in got.iter().zip(&expected) {
                    worst = worst.max((g - want).abs());
                }
                // The contributions and the expected value add up to forust's prediction
                // (its leaves are f32, so the prediction differs past the 6th digit).
                let sum = expected.last().unwrap() + got.iter().sum::<f64>();
                let predicted = b.predict(&Matrix::new(row, 1, row.len()), false)[0];
                assert!(
                    (sum - predicted).abs() < 1e-4,
                    "depth {depth}: {sum} vs {predicted}"
                );
            }
            // Same operations on the same numbers in the same order: equal, not just close.
            assert!(
                worst == 0.0,
                "depth {depth}, missing {missing}, three-way {three_way}: off by {worst}"
            );
        }
    }

    #[test]
    fn a_damaged_tree_is_an_error_not_a_panic() {
        let (x, y) = data(500, 6, false, 3);
        let mut b = booster(&x, &y, 3, false);
        let n = b.trees[2].nodes.len();
        b.trees[2].nodes[0].left_child = n + 5;
        let err = Explainer::new(&b).unwrap_err();
        assert!(err.starts_with("tree 2: node 0 has child"), "{err}");
    }
}
