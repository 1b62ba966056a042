"""The tabletop scene as MJCF: a table, a two-link arm with a pusher, coloured blocks, a green target.

The arm is a horizontal (SCARA-like) two-link arm whose base stands at the table's near edge; a
vertical pusher hangs from its wrist just above the table top, so the arm moves the pusher in the
table plane. Joints are position-controlled (the controller in ``arm.py`` sets their targets).
Blocks slide on the table (x, y slide joints and a yaw hinge, so they never tip): their sliding
friction is joint friction loss and damping, which keeps the simulation cheap; only the pusher and
the blocks collide. The target is a flat green disc on a mocap body, so its position is part of the
simulator state (``mjSTATE_INTEGRATION``), like everything else an episode needs.

Table frame: the arm's base is the origin, +y points away from the arm across the table, z up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Block colours the task knows (name -> RGBA). The target is always green.
PALETTE: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.12, 0.10, 1.0),
    "blue": (0.12, 0.30, 0.90, 1.0),
    "yellow": (0.95, 0.82, 0.10, 1.0),
    "purple": (0.55, 0.20, 0.75, 1.0),
    "orange": (0.98, 0.50, 0.05, 1.0),
}
TARGET_RGBA = (0.10, 0.75, 0.25, 0.9)
CAMERAS = ("front", "top")
FRONT_CAMERA_POS = (0.0, 0.78, 0.5)


@dataclass(frozen=True)
class Geometry:
    """Sizes of the scene, in metres; shared by the builder, the controller and the task."""

    link1: float = 0.25
    link2: float = 0.25
    pusher_radius: float = 0.015
    block_half: float = 0.02
    target_radius: float = 0.05
    arm_height: float = 0.07  # links pass above the blocks (top at 2 * block_half)
    timestep: float = 0.002


GEOMETRY = Geometry()


def _lookat_xyaxes(pos, target, up=(0.0, 0.0, 1.0)) -> str:
    """MJCF ``xyaxes`` of a camera at ``pos`` looking at ``target`` (cameras look along their -z)."""
    pos, target, up = (np.asarray(v, float) for v in (pos, target, up))
    forward = target - pos
    forward /= np.linalg.norm(forward)
    x = np.cross(forward, up)
    x /= np.linalg.norm(x)
    y = np.cross(x, forward)
    return " ".join(f"{v:.5f}" for v in (*x, *y))


def build_mjcf(colors: tuple[str, ...], geometry: Geometry = GEOMETRY, timestep: float | None = None) -> str:
    """The scene's MJCF with one block per colour in ``colors`` (names from ``PALETTE``)."""
    unknown = [c for c in colors if c not in PALETTE]
    if unknown:
        raise ValueError(f"unknown block colours {unknown}; known: {sorted(PALETTE)}")
    if not colors or len(set(colors)) != len(colors):
        raise ValueError(f"block colours must be distinct and at least one, got {list(colors)}")
    g = geometry
    dt = timestep or g.timestep
    h = g.block_half
    blocks = "\n".join(
        f"""    <body name="block_{c}" pos="0 0 {h}">
      <joint name="block_{c}_x" type="slide" axis="1 0 0" range="-0.45 0.45" {_BLOCK_JOINT}/>
      <joint name="block_{c}_y" type="slide" axis="0 1 0" range="-0.05 0.65" {_BLOCK_JOINT}/>
      <joint name="block_{c}_yaw" type="hinge" axis="0 0 1" damping="0.002" frictionloss="0.0005"/>
      <geom name="block_{c}" type="box" size="{h} {h} {h}" mass="0.05" rgba="{_rgba(PALETTE[c])}"
            contype="1" conaffinity="1" friction="0.5 0.005 0.0001"/>
    </body>"""
        for c in colors
    )
    front = _lookat_xyaxes(FRONT_CAMERA_POS, (0.0, 0.24, 0.0))
    top = _lookat_xyaxes((0.0, 0.25, 0.8), (0.0, 0.25, 0.0), up=(0.0, 1.0, 0.0))
    z = g.arm_height
    pusher_half = (z - 0.008) / 2  # from the arm down to 8 mm above the table
    return f"""<mujoco model="rill_tabletop">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{dt}" integrator="implicitfast" gravity="0 0 -9.81"/>
  <size nuserdata="4"/>
  <visual>
    <global offwidth="640" offheight="480"/>
    <!-- Software GL (llvmpipe) renders a 96x96 frame in ~1 ms with these, ~9 ms with the defaults. -->
    <quality offsamples="0" numslices="12" numstacks="6"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.35 0.35 0.35" specular="0.05 0.05 0.05"/>
  </visual>
  <asset>
    <texture name="sky" type="skybox" builtin="gradient" rgb1="0.55 0.65 0.8" rgb2="0.1 0.1 0.15"
             width="64" height="64"/>
  </asset>
  <worldbody>
    <light name="sun" pos="0.3 0.2 1.5" dir="-0.3 0.2 -1" directional="true" diffuse="0.45 0.45 0.45"
           specular="0.1 0.1 0.1" castshadow="false"/>
    <geom name="floor" type="plane" pos="0 0 -0.75" size="3 3 0.1" rgba="0.27 0.27 0.3 1"
          contype="0" conaffinity="0"/>
    <geom name="table" type="box" pos="0 0.3 -0.02" size="0.5 0.4 0.02" rgba="0.62 0.5 0.38 1"
          contype="0" conaffinity="0"/>
    <camera name="front" pos="{_vec(FRONT_CAMERA_POS)}" xyaxes="{front}" fovy="50"/>
    <camera name="top" pos="0 0.25 0.8" xyaxes="{top}" fovy="45"/>
    <geom name="base" type="cylinder" pos="0 0 {z / 2}" size="0.04 {z / 2}" rgba="0.3 0.3 0.32 1"
          contype="0" conaffinity="0"/>
    <body name="link1" pos="0 0 {z}">
      <joint name="shoulder" type="hinge" axis="0 0 1" range="-2.8 2.8" damping="0.05" armature="0.01"/>
      <geom name="link1" type="capsule" fromto="0 0 0 0 {g.link1} 0" size="0.018" mass="0.3"
            rgba="0.85 0.85 0.88 1" contype="0" conaffinity="0"/>
      <body name="link2" pos="0 {g.link1} 0">
        <joint name="elbow" type="hinge" axis="0 0 1" range="0.0 2.8" damping="0.05" armature="0.01"/>
        <geom name="link2" type="capsule" fromto="0 0 0 0 {g.link2} 0" size="0.015" mass="0.2"
              rgba="0.85 0.85 0.88 1" contype="0" conaffinity="0"/>
        <body name="pusher" pos="0 {g.link2} 0">
          <geom name="pusher" type="cylinder" pos="0 0 {-pusher_half}" size="{g.pusher_radius} {pusher_half}"
                mass="0.05" rgba="0.15 0.15 0.15 1" contype="1" conaffinity="1"/>
          <site name="ee" pos="0 0 {-(z - h)}" size="0.005"/>
        </body>
      </body>
    </body>
{blocks}
    <body name="target" mocap="true" pos="0 0.3 0.0005">
      <geom name="target" type="cylinder" size="{g.target_radius} 0.0005" rgba="{_rgba(TARGET_RGBA)}"
            contype="0" conaffinity="0"/>
    </body>
  </worldbody>
  <actuator>
    <position name="shoulder" joint="shoulder" kp="300" dampratio="1" ctrlrange="-2.8 2.8"/>
    <position name="elbow" joint="elbow" kp="200" dampratio="1" ctrlrange="0.0 2.8"/>
  </actuator>
</mujoco>
"""


_BLOCK_JOINT = 'damping="0.4" frictionloss="0.02"'


def _vec(values) -> str:
    return " ".join(f"{v:g}" for v in values)


def _rgba(rgba) -> str:
    return " ".join(f"{v:g}" for v in rgba)
