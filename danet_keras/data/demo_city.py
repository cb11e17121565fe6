"""A synthetic street-scene dataset in the Cityscapes layout, for offline demos.

    make_demo_city("/tmp/city")   # then cityscapes_dataset("/tmp/city", "train")

Scenes are drawn in one-point perspective on a flat ground plane: a road
with curbs and lane marks, sidewalks, optional terrain strips behind low
walls, facades of buildings, trees and walls along both sides, poles, people
on the sidewalks, cars on the road, sky, and sometimes the ego vehicle's
bonnet (Cityscapes id 1, ignored). Labels use the real Cityscapes label ids
(`labelIds` PNGs), so the official reader maps them to train ids.

Colour alone does not decide the class: road, sidewalk and gravel terrain
draw their colours from one shared distribution and share a texture (they
differ by where they lie and by curbs and paving lines), walls and poles are
grey like the ground, cars come in road greys too, and every image gets its
own exposure, colour cast, sun gradient and cast shadows. Geometry is
consistent (everything shrinks towards the vanishing point), so a network
that uses context can learn it at low resolution.

Files are a function of (seed, split, index) only: two runs with the same
arguments write byte-identical PNGs.
"""

import os

import numpy as np

from danet_keras.data.labels import CITYSCAPES_ID
from danet_keras.utils.atomic_io import save_png
from danet_keras.utils.output_paths import own_folder

# The Cityscapes classes the demo draws (label names of the cityscapesScripts table).
DEMO_CLASSES = (
    "road", "sidewalk", "building", "wall", "pole", "vegetation", "terrain", "sky", "person",
    "car",
)  # fmt: skip
CITIES = {"train": "synthville", "val": "mocktown"}
_ID = {name: CITYSCAPES_ID[name] for name in DEMO_CLASSES + ("ego vehicle",)}


def smooth_noise(rng, shape, cell):
    """Value noise in about [-1, 1]: a random grid of `cell`-pixel spacing, bilinearly upsampled."""
    height, width = shape
    grid = rng.uniform(-1.0, 1.0, (height // cell + 2, width // cell + 2))
    y = np.arange(height) / cell
    x = np.arange(width) / cell
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


class _Canvas:
    """An image and its label map, painted back to front."""

    def __init__(self, height, width):
        self.image = np.zeros((height, width, 3), np.float32)
        self.label = np.zeros((height, width), np.uint8)

    def paint(self, mask, colour, label_name, region=(slice(None), slice(None))):
        """Paints `mask` (of the shape of `region`) with a colour or an image of colours."""
        colour = np.asarray(colour, np.float32)
        image, label = self.image[region], self.label[region]
        image[mask] = colour if colour.ndim == 1 else colour[mask]
        label[mask] = _ID[label_name]


def _ground_colour(rng):
    """A grey-brown pavement colour; road, sidewalk and gravel all draw from this."""
    grey = rng.uniform(70, 175)
    tint = rng.uniform(-12, 12, 3)
    return np.clip(grey + tint, 0, 255)


def _render_scene(rng, height, width):
    canvas = _Canvas(height, width)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    horizon = height * rng.uniform(0.36, 0.5)
    vanish_x = width * rng.uniform(0.38, 0.62)
    camera = height - horizon  # camera height in ground units (pixels at the bottom row)
    fine = smooth_noise(rng, (height, width), 2)
    coarse = smooth_noise(rng, (height, width), 16)

    # Sky: vertical gradient, clouds.
    sky_top = rng.choice([[70, 120, 200], [150, 160, 170], [110, 150, 210], [200, 170, 150]])
    sky_low = np.clip(np.asarray(sky_top) + rng.uniform(30, 70), 0, 255)
    mix = np.clip(ys / max(horizon, 1), 0, 1)[..., None]
    clouds = np.clip(smooth_noise(rng, (height, width), 24), 0, 1)[..., None] * rng.uniform(0, 90)
    canvas.paint(
        np.ones((height, width), bool), sky_top * (1 - mix) + sky_low * mix + clouds, "sky"
    )

    # Ground plane: t = 1 at the bottom row, 0 at the horizon; lateral X and depth in ground units.
    t = np.maximum((ys - horizon) / camera, 1e-6)
    lateral = (xs - vanish_x) / t
    depth = 1.0 / t
    ground = ys > horizon + 0.5
    road_half = {-1: width * rng.uniform(0.25, 0.42), 1: width * rng.uniform(0.25, 0.42)}
    walk = {s: width * rng.uniform(0.12, 0.3) for s in (-1, 1)}
    terrain = {s: width * rng.uniform(0.25, 0.6) if rng.uniform() < 0.45 else 0.0 for s in (-1, 1)}
    road_c, walk_c = _ground_colour(rng), _ground_colour(rng)
    texture = (fine * 9 + coarse * 14)[..., None]
    side = np.where(lateral < 0, -1, 1)
    distance = np.abs(lateral)
    road_edge = np.where(side < 0, road_half[-1], road_half[1])
    walk_edge = road_edge + np.where(side < 0, walk[-1], walk[1])

    # Terrain (behind the sidewalk): grass or gravel that looks like the pavement.
    if rng.uniform() < 0.5:
        terrain_c = np.asarray([rng.uniform(60, 130), rng.uniform(110, 170), rng.uniform(40, 90)])
    else:
        terrain_c = _ground_colour(rng)
    canvas.paint(ground & (distance >= walk_edge), terrain_c + texture * 1.5, "terrain")
    # Sidewalk: paving lines in ground coordinates, a bright curb at the road.
    tiles = (np.abs(((lateral / (width * 0.05)) % 1.0) - 0.5) > 0.45) | (
        np.abs(((depth * 2.5) % 1.0) - 0.5) > 0.44
    )
    walk_img = walk_c + texture - tiles[..., None] * 25
    curb = (distance - road_edge) < width * 0.012
    walk_img = np.where(curb[..., None], walk_c + 45, walk_img)
    canvas.paint(ground & (distance >= road_edge) & (distance < walk_edge), walk_img, "sidewalk")
    # Road: asphalt, dashed centre line.
    lane = (np.abs(lateral - rng.uniform(-0.1, 0.1) * width) < width * 0.01) & ((depth % 1.2) < 0.6)
    road_img = np.where(lane[..., None], 225.0, road_c + texture)
    canvas.paint(ground & (distance < road_edge), road_img, "road")

    # Low walls along the middle of terrain strips.
    for s in (-1, 1):
        if terrain[s] and rng.uniform() < 0.6:
            plane = s * (road_half[s] + walk[s] + terrain[s] * 0.5)
            _vertical_plane(
                canvas,
                rng,
                xs,
                ys,
                horizon,
                camera,
                vanish_x,
                plane,
                [(1.0, 40.0, rng.uniform(0.4, 0.7), "wall")],
                fine,
            )
    # Facades along both sides: buildings, trees, low walls, by depth segment.
    for s in (-1, 1):
        plane = s * (road_half[s] + walk[s] + terrain[s])
        segments, near = [], 0.6
        while near < 60:
            far = near * rng.uniform(1.25, 1.9) + rng.uniform(0.3, 1.5)
            kind = rng.choice(["building", "vegetation", "wall"], p=[0.55, 0.3, 0.15])
            high = {"building": rng.uniform(2.0, 5.0), "vegetation": rng.uniform(1.5, 3.5),
                    "wall": rng.uniform(0.4, 0.8)}[kind]  # fmt: skip
            segments.append((near, far, high, kind))
            near = far
        _vertical_plane(canvas, rng, xs, ys, horizon, camera, vanish_x, plane, segments, fine)

    # Objects, far to near so nearer ones occlude: poles and people on sidewalks, cars on the road.
    objects = []
    for s in (-1, 1):
        for _ in range(rng.integers(1, 4)):
            objects.append(("pole", rng.uniform(1.2, 6), s * (road_half[s] + walk[s] * 0.8)))
        for _ in range(rng.integers(0, 4)):
            on_walk = road_half[s] + walk[s] * rng.uniform(0.3, 0.7)
            objects.append(("person", rng.uniform(1.2, 6), s * on_walk))
    for _ in range(rng.integers(1, 5)):
        lane_x = rng.uniform(-0.7, 0.7) * min(road_half.values())
        objects.append(("car", rng.uniform(1.2, 8), lane_x))
    for kind, obj_depth, obj_x in sorted(objects, key=lambda o: -o[1]):
        _draw_object(canvas, rng, horizon, camera, vanish_x, kind, 1.0 / obj_depth, obj_x)

    # Ego vehicle bonnet (label id 1, ignored in training) on some images.
    if rng.uniform() < 0.3:
        top = height * (1 - rng.uniform(0.05, 0.1))
        bonnet = ys > top + ((xs - width / 2) / (width / 2)) ** 2 * height * 0.03
        canvas.paint(bonnet, rng.uniform(10, 60, 3) + fine[..., None] * 5, "ego vehicle")

    # Lighting: cast shadows on the ground, sun gradient, exposure, colour cast, sensor noise.
    image = canvas.image
    flat = [_ID["road"], _ID["sidewalk"], _ID["terrain"]]
    for _ in range(rng.integers(0, 3)):
        x0, slope = rng.uniform(0, width), rng.uniform(-2, 2)
        shadow = np.isin(canvas.label, flat) & (
            (xs - x0 - slope * (ys - horizon)) * rng.choice([-1, 1]) > 0
        )
        image[shadow] *= rng.uniform(0.55, 0.8)
    gradient = 1 + rng.uniform(-0.25, 0.25) * (xs / width - 0.5)
    image *= (gradient * rng.uniform(0.6, 1.25))[..., None] * rng.uniform(0.88, 1.12, 3)
    image += rng.normal(0, 3, image.shape)
    return np.clip(image, 0, 255).round().astype(np.uint8), canvas.label


def _vertical_plane(canvas, rng, xs, ys, horizon, camera, vanish_x, plane, segments, fine):
    """Paints facades in the vertical plane at lateral position `plane`, split by depth.

    Args:
        segments: list of (near depth, far depth, height in camera heights, class name).
    """
    height = ys.shape[0]
    column_t = (xs[0] - vanish_x) / plane  # perspective factor of the plane at each column
    column_depth = np.where(column_t > 1.0 / 80, 1.0 / np.maximum(column_t, 1e-6), np.inf)
    for near, far, high, kind in segments:
        columns = np.nonzero((column_depth >= near) & (column_depth < far))[0]
        if columns.size == 0:
            continue
        region = (slice(0, height), slice(columns[0], columns[-1] + 1))
        t, depth = column_t[region[1]][None, :], column_depth[region[1]][None, :]
        rows = ys[region]
        units = (horizon + t * camera - rows) / (t * camera)  # camera heights above ground
        shape, noise = rows.shape, fine[region][..., None]
        if kind == "vegetation":
            top = high * (1 + 0.15 * smooth_noise(rng, shape, 6))
            mask = (units >= 0) & (units < top)
            green = np.asarray([rng.uniform(30, 110), rng.uniform(80, 150), rng.uniform(20, 70)])
            colour = green + noise * 25 + smooth_noise(rng, shape, 3)[..., None] * 20
        elif kind == "building":
            mask = (units >= 0) & (units < high)
            base = rng.choice([[200, 190, 170], [150, 150, 155], [170, 90, 70], [225, 220, 210],
                               [110, 110, 120]]) + rng.uniform(-20, 20, 3)  # fmt: skip
            column = (depth * rng.uniform(1.5, 3.0)) % 1.0
            row = (units * rng.uniform(2.0, 3.5)) % 1.0
            window = (column > 0.35) & (row > 0.4) & (units > 0.3)
            colour = np.where(window[..., None], rng.uniform(30, 90, 3), base + noise * 8)
        else:  # wall: pavement-grey concrete or brick, with a capping
            mask = (units >= 0) & (units < high)
            base = _ground_colour(rng) if rng.uniform() < 0.6 else np.asarray([150, 80, 60])
            cap = units > high * 0.88
            colour = np.where(cap[..., None], base * 0.7, base + noise * 10)
        canvas.paint(mask, colour, kind, region)


def _draw_object(canvas, rng, horizon, camera, vanish_x, kind, t, lateral):
    """Paints a pole, person or car standing at depth 1/t and lateral position `lateral`."""
    height, width = canvas.label.shape
    base_x = vanish_x + lateral * t
    ground_row = horizon + t * camera
    unit = t * camera  # one camera height, in pixels, at this depth
    # Box of 4 camera heights up and 1 to each side, clipped to the image.
    top, bottom = int(max(ground_row - 4 * unit, 0)), int(min(ground_row + 1, height))
    left, right = int(max(base_x - unit, 0)), int(min(base_x + unit + 1, width))
    if bottom <= top or right <= left:
        return
    region = (slice(top, bottom), slice(left, right))
    ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32)
    up = (ground_row - ys) / unit  # height above the ground, in camera heights
    across = (xs - base_x) / unit  # lateral offset, in camera heights
    if kind == "pole":
        mask = (np.abs(across) < 0.07) & (up >= 0) & (up < rng.uniform(2.5, 3.8))
        canvas.paint(mask, _ground_colour(rng) * 0.8, "pole", region)
    elif kind == "person":
        size = rng.uniform(1.2, 1.5)
        head = (across / 0.13) ** 2 + ((up - size * 0.9) / 0.14) ** 2 < 1
        torso = (np.abs(across) < 0.22) & (up > size * 0.45) & (up < size * 0.82)
        legs = (np.abs(np.abs(across) - 0.1) < 0.08) & (up >= 0) & (up <= size * 0.45)
        canvas.paint(legs, rng.uniform(20, 120, 3), "person", region)
        canvas.paint(torso, rng.uniform(20, 230, 3), "person", region)
        skin = [rng.uniform(120, 220), rng.uniform(80, 170), rng.uniform(60, 140)]
        canvas.paint(head, skin, "person", region)
    else:
        half = rng.uniform(0.55, 0.7)
        body = (np.abs(across) < half) & (up > 0.12) & (up < 0.65)
        cabin = (np.abs(across) < half * (0.85 - 0.3 * (up - 0.65))) & (up >= 0.65) & (up < 1.0)
        wheels = (np.abs(np.abs(across) - half * 0.65) < 0.15) & (up >= 0) & (up <= 0.2)
        paint = rng.choice([_ground_colour(rng), rng.uniform(0, 255, 3)])
        canvas.paint(wheels, [20, 20, 20], "car", region)
        canvas.paint(body, paint, "car", region)
        canvas.paint(cabin, np.asarray(paint) * 0.5 + 20, "car", region)


def render_scene(seed, size=(256, 512)):
    """One scene for an integer seed sequence: (image uint8 (H, W, 3), label ids uint8 (H, W))."""
    rng = np.random.default_rng(seed)
    return _render_scene(rng, int(size[0]), int(size[1]))


def make_demo_city(out_dir, num_train=200, num_val=40, size=(256, 512), seed=0):
    """Writes the demo city in the Cityscapes layout.

    Writes `out_dir/leftImg8bit/{train,val}/{city}/{city}_{seq:06d}_000019_leftImg8bit.png`
    and `out_dir/gtFine/{train,val}/{city}/..._gtFine_labelIds.png`.

    Args:
        out_dir: output directory (created): this function owns it, so it
            must be new, empty or a demo city written earlier (rewritten in
            place); anything else is refused (`danet_keras.utils.output_paths`).
        num_train, num_val: number of scenes per split.
        size: (height, width) of every image.
        seed: the images are a function of (seed, split, index) only.

    Returns:
        dict split -> list of (image_path, label_path).
    """
    if num_train < 1 or num_val < 0:
        raise ValueError(f"need num_train >= 1 and num_val >= 0, got {num_train}, {num_val}")
    height, width = (int(v) for v in size)
    if height < 16 or width < 16:
        raise ValueError(f"size must be at least 16x16, got {height}x{width}")
    own_folder(out_dir, "demo_city", "the demo city")
    written = {}
    for split_index, (split, count) in enumerate((("train", num_train), ("val", num_val))):
        city = CITIES[split]
        image_dir = os.path.join(out_dir, "leftImg8bit", split, city)
        label_dir = os.path.join(out_dir, "gtFine", split, city)
        os.makedirs(image_dir, exist_ok=True)
        os.makedirs(label_dir, exist_ok=True)
        written[split] = []
        for index in range(count):
            image, label = render_scene((int(seed), split_index, index), (height, width))
            stem = f"{city}_{index:06d}_000019"
            image_path = os.path.join(image_dir, f"{stem}_leftImg8bit.png")
            label_path = os.path.join(label_dir, f"{stem}_gtFine_labelIds.png")
            save_png(image_path, image)
            save_png(label_path, label)
            written[split].append((image_path, label_path))
    return written
