//! Hitscan: the first wall or player a shot's ray meets.
//!
//! All geometry is in subunits as `f32` (every coordinate is an integer below
//! 2^16, exact in `f32`), so player boxes and walls need no conversion.

use protocol::PlayerId;
use protocol::datagram::wire_to_angle;
use protocol::map::Map;
use protocol::movement::{PLAYER_HALF_SIZE, Pos, SUBUNITS};

/// A ray from a point along a unit direction, cut off at `len`.
#[derive(Debug, Clone, Copy)]
pub struct Ray {
    ox: f32,
    oy: f32,
    dx: f32,
    dy: f32,
    len: f32,
}

impl Ray {
    /// A shot from `origin` along `aim` (wire turn: 0 = +x, a quarter turn =
    /// +y) reaching `range_units` map units.
    pub fn shot(origin: Pos, aim: u16, range_units: f32) -> Ray {
        let (dy, dx) = wire_to_angle(aim).sin_cos();
        let len = (range_units * SUBUNITS as f32).max(0.0);
        Ray { ox: origin.x as f32, oy: origin.y as f32, dx, dy, len }
    }

    /// Distance along the ray at which it enters the box `[x0, x1] x [y0, y1]`,
    /// if it does within its length; 0 when it starts inside. Edges count as
    /// inside, so a ray grazing a wall is stopped by it.
    fn enters(&self, x0: f32, y0: f32, x1: f32, y1: f32) -> Option<f32> {
        let (mut t0, mut t1) = (0.0f32, self.len);
        for (o, d, lo, hi) in [(self.ox, self.dx, x0, x1), (self.oy, self.dy, y0, y1)] {
            if d == 0.0 {
                // Parallel to this pair of faces: inside the slab or never.
                if o < lo || o > hi {
                    return None;
                }
                continue;
            }
            let (a, b) = ((lo - o) / d, (hi - o) / d);
            t0 = t0.max(a.min(b));
            t1 = t1.min(a.max(b));
            if t0 > t1 {
                return None;
            }
        }
        Some(t0)
    }

    /// Distance at which the ray leaves `[0, w] x [0, h]`, starting inside.
    fn exits(&self, w: f32, h: f32) -> f32 {
        let mut t = self.len;
        for (o, d, hi) in [(self.ox, self.dx, w), (self.oy, self.dy, h)] {
            if d > 0.0 {
                t = t.min((hi - o) / d);
            } else if d < 0.0 {
                t = t.min(-o / d);
            }
        }
        t.max(0.0)
    }
}

/// The player the ray hits first, among `targets` (id and position of every
/// player that may be hit), or `None` when a wall, a map edge or the range
/// comes first. A target exactly as far as a wall is behind it; of two targets
/// at the same distance the first listed wins.
pub fn trace(map: &Map, ray: &Ray, targets: impl IntoIterator<Item = (PlayerId, Pos)>) -> Option<PlayerId> {
    let sub = SUBUNITS as f32;
    let mut blocked_at = ray.exits(map.width as f32 * sub, map.height as f32 * sub);
    for w in &map.walls {
        let (x0, y0, x1, y1) = w.sub_bounds();
        if let Some(t) = ray.enters(x0 as f32, y0 as f32, x1 as f32, y1 as f32) {
            blocked_at = blocked_at.min(t);
        }
    }
    let h = PLAYER_HALF_SIZE as f32;
    let mut best: Option<(f32, PlayerId)> = None;
    for (id, p) in targets {
        let (x, y) = (p.x as f32, p.y as f32);
        let Some(t) = ray.enters(x - h, y - h, x + h, y + h) else {
            continue;
        };
        if t < blocked_at && best.is_none_or(|(bt, _)| t < bt) {
            best = Some((t, id));
        }
    }
    best.map(|(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::datagram::angle_to_wire;
    use protocol::map::{Point, Rect};
    use std::f32::consts::{FRAC_PI_2, PI};

    fn map() -> Map {
        Map {
            name: "t".into(),
            width: 1000,
            height: 1000,
            walls: vec![Rect { x: 500, y: 0, w: 32, h: 400 }],
            spawns: vec![Point { x: 100, y: 100 }, Point { x: 900, y: 900 }],
        }
    }

    fn u(x: i32, y: i32) -> Pos {
        Pos::from_units(x, y)
    }

    #[test]
    fn hits_a_player_in_each_direction() {
        let m = map();
        let o = u(300, 600);
        for (angle, target) in
            [(0.0, u(400, 600)), (FRAC_PI_2, u(300, 700)), (PI, u(200, 600)), (-FRAC_PI_2, u(300, 500))]
        {
            let ray = Ray::shot(o, angle_to_wire(angle), 6000.0);
            assert_eq!(trace(&m, &ray, [(1, target)]), Some(1), "angle {angle}");
            let back = Ray::shot(o, angle_to_wire(angle + PI), 6000.0);
            assert_eq!(trace(&m, &back, [(1, target)]), None, "angle {angle} reversed");
        }
    }

    #[test]
    fn box_edges_count_but_a_miss_is_a_miss() {
        let m = map();
        let ray = Ray::shot(u(100, 600), 0, 6000.0);
        // The target's box spans y 586..614 units; the ray runs along y = 600.
        assert_eq!(trace(&m, &ray, [(1, u(300, 614))]), Some(1));
        assert_eq!(trace(&m, &ray, [(1, u(300, 615))]), None);
    }

    #[test]
    fn walls_and_range_stop_the_ray() {
        let m = map();
        let ray = Ray::shot(u(300, 200), 0, 6000.0);
        assert_eq!(trace(&m, &ray, [(1, u(700, 200))]), None);
        assert_eq!(trace(&m, &ray, [(1, u(450, 200))]), Some(1));
        let short = Ray::shot(u(300, 600), 0, 100.0);
        assert_eq!(trace(&m, &short, [(1, u(420, 600))]), None);
        assert_eq!(trace(&m, &short, [(1, u(410, 600))]), Some(1));
    }

    #[test]
    fn nearest_target_wins_and_overlap_is_point_blank() {
        let m = map();
        let ray = Ray::shot(u(100, 600), 0, 6000.0);
        assert_eq!(trace(&m, &ray, [(1, u(400, 600)), (2, u(200, 600))]), Some(2));
        assert_eq!(trace(&m, &ray, [(3, u(105, 600))]), Some(3));
    }

    #[test]
    fn map_edge_ends_the_ray() {
        let ray = Ray::shot(u(100, 600), angle_to_wire(PI), 6000.0);
        assert!((ray.exits(16000.0, 16000.0) - 1600.0).abs() < 0.5);
    }
}
