//! Every map shipped in `maps/` loads, and every way a map can be wrong is
//! refused with a message that says what to fix.

use std::path::PathBuf;

use protocol::map::{MAX_SIDE, MAX_SPAWNS, MAX_WALLS, MIN_SIDE, MIN_WALL_THICKNESS, Map, MapError, Rect};
use protocol::movement::{PLAYER_HALF_SIZE, SUBUNITS};

fn maps_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../maps")
}

#[test]
fn every_shipped_map_is_valid() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(maps_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let map = Map::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // The file name is the map's name, so `--map NAME` finds it.
            assert_eq!(path.file_stem().unwrap().to_str().unwrap(), map.name, "{}", path.display());
            names.push(map.name);
        }
    }
    names.sort();
    assert!(names.contains(&"arena".to_string()) && names.contains(&"duel".to_string()), "{names:?}");
}

#[test]
fn builtin_arena_is_the_shipped_file() {
    let file = std::fs::read_to_string(maps_dir().join("arena.toml")).unwrap();
    let arena = Map::builtin_arena();
    assert_eq!(Map::parse(&file).unwrap(), arena);
    // What maps/README.md says about it.
    assert_eq!((arena.name.as_str(), arena.width, arena.height), ("arena", 1600, 1200));
    assert_eq!((arena.walls.len(), arena.spawns.len()), (7, 10));
}

#[test]
fn documented_limits() {
    assert_eq!((MIN_SIDE, MAX_SIDE, MIN_WALL_THICKNESS, MAX_WALLS), (256, 4000, 16, 256));
    assert_eq!((protocol::map::MIN_SPAWNS, MAX_SPAWNS), (2, 64));
    assert_eq!((SUBUNITS, PLAYER_HALF_SIZE / SUBUNITS), (16, 14));
}

/// A valid map with `edit` applied to its TOML lines.
fn variant(edit: impl FnOnce(&mut Vec<String>)) -> String {
    let mut lines: Vec<String> = [
        "name = \"test\"",
        "width = 1000",
        "height = 800",
        "walls = [{ x = 400, y = 300, w = 200, h = 32 }]",
        "spawns = [{ x = 100, y = 100 }, { x = 900, y = 700 }]",
    ]
    .map(String::from)
    .to_vec();
    edit(&mut lines);
    lines.join("\n")
}

fn set(key: &'static str, value: String) -> impl FnOnce(&mut Vec<String>) {
    move |lines| {
        let line = lines.iter_mut().find(|l| l.starts_with(key)).unwrap();
        *line = format!("{key} = {value}");
    }
}

fn error(text: &str) -> (MapError, String) {
    let e = Map::parse(text).expect_err("the map should be refused");
    let msg = e.to_string();
    (e, msg)
}

#[test]
fn the_base_variant_is_valid() {
    Map::parse(&variant(|_| {})).unwrap();
}

#[test]
fn syntax_errors_name_the_problem() {
    let (e, msg) = error("name = \"test\"\nwidth = ");
    assert!(matches!(e, MapError::Syntax(_)));
    assert!(msg.starts_with("map is not valid TOML:"), "{msg}");

    let (e, msg) = error(&variant(set("width", "\"wide\"".into())));
    assert!(matches!(e, MapError::Syntax(_)));
    assert!(msg.contains("width"), "{msg}");

    let (_, msg) = error(&variant(|l| {
        l.pop();
    }));
    assert!(msg.contains("missing field `spawns`"), "{msg}");

    // Coordinates beyond i32 are a syntax error, not a wrap-around.
    let (_, msg) = error(&variant(set("width", "4294968296".into())));
    assert!(msg.contains("width"), "{msg}");
}

#[test]
fn unknown_fields_are_refused() {
    let (e, msg) = error(&variant(|l| l.push("floor = \"lava\"".into())));
    assert!(matches!(e, MapError::Syntax(_)));
    assert!(msg.contains("unknown field `floor`"), "{msg}");

    // Inside walls and spawns too: a typo must not silently drop a field.
    let (_, msg) = error(&variant(set("walls", "[{ x = 400, y = 300, w = 200, h = 32, d = 5 }]".into())));
    assert!(msg.contains("unknown field `d`"), "{msg}");
    let (_, msg) = error(&variant(set("spawns", "[{ x = 100, y = 100, z = 1 }, { x = 900, y = 700 }]".into())));
    assert!(msg.contains("unknown field `z`"), "{msg}");
}

#[test]
fn bad_names_are_refused() {
    for bad in ["", "Arena", "my arena", "arena!", "été", &"a".repeat(33)] {
        let (e, msg) = error(&variant(set("name", format!("{bad:?}"))));
        assert_eq!(e, MapError::Name(bad.to_string()));
        assert!(msg.contains("must be 1-32 characters of a-z, 0-9, '-' or '_'"), "{msg}");
    }
    for good in ["a", "dust-2", "big_arena_01", &"a".repeat(32)] {
        Map::parse(&variant(set("name", format!("{good:?}")))).unwrap();
    }
}

#[test]
fn sizes_outside_the_limits_are_refused() {
    for (w, h) in [(MIN_SIDE - 1, 800), (1000, MIN_SIDE - 1), (MAX_SIDE + 1, 800), (1000, 0), (-1000, 800)] {
        let text = variant(|l| {
            set("width", w.to_string())(l);
            set("height", h.to_string())(l);
        });
        let (e, msg) = error(&text);
        assert_eq!(e, MapError::Size { width: w, height: h });
        assert_eq!(msg, format!("map size {w}x{h} is outside 256..=4000 units per side"));
    }
    // Both limits are inclusive.
    let square = |side: i32| {
        format!(
            "name = \"sq\"\nwidth = {side}\nheight = {side}\nspawns = [{{ x = 50, y = 50 }}, {{ x = 200, y = 200 }}]"
        )
    };
    Map::parse(&square(MIN_SIDE)).unwrap();
    Map::parse(&square(MAX_SIDE)).unwrap();
}

#[test]
fn too_many_walls_are_refused() {
    let walls = |n: usize| {
        let ws: Vec<String> = (0..n)
            .map(|i| format!("{{ x = {}, y = {}, w = 16, h = 16 }}", 200 + (i % 30) * 20, 200 + (i / 30) * 20))
            .collect();
        format!("[{}]", ws.join(", "))
    };
    Map::parse(&variant(set("walls", walls(MAX_WALLS)))).unwrap();
    let (e, msg) = error(&variant(set("walls", walls(MAX_WALLS + 1))));
    assert_eq!(e, MapError::TooManyWalls(257));
    assert_eq!(msg, "map has 257 walls; at most 256 are allowed");
}

#[test]
fn thin_walls_are_refused() {
    for (w, h) in [(15, 100), (100, 15), (0, 100), (100, -5)] {
        let rect = Rect { x: 400, y: 300, w, h };
        let text = variant(set(
            "walls",
            format!("[{{ x = 10, y = 10, w = 20, h = 20 }}, {{ x = 400, y = 300, w = {w}, h = {h} }}]"),
        ));
        let (e, msg) = error(&text);
        assert_eq!(e, MapError::Wall { index: 1, rect });
        assert!(msg.starts_with("wall #1 "), "{msg}");
        assert!(msg.contains("thinner than 16 units"), "{msg}");
    }
    Map::parse(&variant(set("walls", "[{ x = 400, y = 300, w = 16, h = 16 }]".into()))).unwrap();
}

#[test]
fn walls_outside_the_map_are_refused() {
    for (x, y, w, h) in
        [(-1, 300, 100, 100), (300, -20, 100, 100), (950, 300, 51, 100), (300, 790, 100, 11), (300, 700, 100, 101)]
    {
        let text = variant(set("walls", format!("[{{ x = {x}, y = {y}, w = {w}, h = {h} }}]")));
        let (e, msg) = error(&text);
        assert_eq!(e, MapError::Wall { index: 0, rect: Rect { x, y, w, h } });
        assert!(msg.contains("outside the map"), "{msg}");
    }
    // Flush with the edges is inside.
    Map::parse(&variant(set(
        "walls",
        "[{ x = 0, y = 0, w = 1000, h = 16 }, { x = 984, y = 0, w = 16, h = 800 }]".into(),
    )))
    .unwrap();
}

#[test]
fn huge_coordinates_are_refused_without_overflow() {
    // Sums like x + w and products like x * 16 would overflow i32 here.
    let big = i32::MAX;
    for (x, y, w, h) in [(big, 0, 16, 16), (0, big - 10, 16, 100), (900, 300, big, 16), (big - 5, big - 5, big, big)] {
        let text = variant(set("walls", format!("[{{ x = {x}, y = {y}, w = {w}, h = {h} }}]")));
        let (e, _) = error(&text);
        assert_eq!(e, MapError::Wall { index: 0, rect: Rect { x, y, w, h } });
    }
    for (x, y) in [(big, 100), (100, big), (i32::MIN, 100), (200_000_000, 100), (100, -200_000_000)] {
        let text = variant(set("spawns", format!("[{{ x = 100, y = 100 }}, {{ x = {x}, y = {y} }}]")));
        let (e, _) = error(&text);
        assert_eq!(e, MapError::Spawn { index: 1, x, y });
    }
}

#[test]
fn spawn_counts_outside_the_limits_are_refused() {
    let spawns = |n: usize| {
        let ps: Vec<String> =
            (0..n).map(|i| format!("{{ x = {}, y = {} }}", 50 + (i % 10) * 40, 50 + (i / 10) * 40)).collect();
        format!("[{}]", ps.join(", "))
    };
    for n in [0, 1, MAX_SPAWNS + 1] {
        let (e, msg) = error(&variant(set("spawns", spawns(n))));
        assert_eq!(e, MapError::SpawnCount(n));
        assert_eq!(msg, format!("map has {n} spawn points; it needs 2..=64"));
    }
    Map::parse(&variant(set("spawns", spawns(MAX_SPAWNS)))).unwrap();
}

#[test]
fn spawns_inside_walls_are_refused() {
    // The wall spans x 400..600, y 300..332; a player is 28 units square.
    for (x, y) in [(500, 316), (400, 300), (387, 316), (500, 345)] {
        let text = variant(set("spawns", format!("[{{ x = 100, y = 100 }}, {{ x = {x}, y = {y} }}]")));
        let (e, msg) = error(&text);
        assert_eq!(e, MapError::Spawn { index: 1, x, y });
        assert_eq!(msg, format!("spawn point #1 ({x}, {y}) is too close to the edge or inside a wall"));
    }
    // Touching the wall is allowed.
    for (x, y) in [(386, 316), (614, 316), (500, 286), (500, 346)] {
        Map::parse(&variant(set("spawns", format!("[{{ x = 100, y = 100 }}, {{ x = {x}, y = {y} }}]")))).unwrap();
    }
}

#[test]
fn spawns_at_the_edge_are_refused() {
    for (x, y) in [(13, 100), (100, 13), (987, 100), (100, 787), (-5, 100), (1000, 800)] {
        let text = variant(set("spawns", format!("[{{ x = {x}, y = {y} }}, {{ x = 900, y = 700 }}]")));
        let (e, msg) = error(&text);
        assert_eq!(e, MapError::Spawn { index: 0, x, y });
        assert!(msg.contains("too close to the edge"), "{msg}");
    }
    // Half a player (14 units) from the edge is the closest allowed.
    Map::parse(&variant(set("spawns", "[{ x = 14, y = 14 }, { x = 986, y = 786 }]".into()))).unwrap();
}

#[test]
fn deeply_nested_toml_is_refused_without_overflowing_the_stack() {
    for depth in [1_000, 100_000] {
        let arrays = format!("walls = {}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(matches!(Map::parse(&arrays), Err(MapError::Syntax(_))));
        let tables = format!("walls = {}1{}", "{ a = ".repeat(depth), " }".repeat(depth));
        assert!(matches!(Map::parse(&tables), Err(MapError::Syntax(_))));
    }
}
