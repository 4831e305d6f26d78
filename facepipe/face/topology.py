"""The 468-vertex FaceMesh topology: named vertex groups and loops, triangles, mirror map, mesh distances.

Vertex indices are mediapipe FaceMesh's. "Left"/"right" are the subject's own sides (mediapipe's
convention: ``LEFT_EYE`` holds vertex 263, which is on the image's right in a frontal view).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

N_VERTICES = 468

# Outer eye corners (the inter-ocular distance of the 300-W convention) and lip corners.
EYE_OUTER_R, EYE_OUTER_L = 33, 263
EYE_INNER_R, EYE_INNER_L = 133, 362
MOUTH_CORNER_R, MOUTH_CORNER_L = 61, 291
LIP_INNER_UPPER, LIP_INNER_LOWER = 13, 14
NOSE_TIP, CHIN, FOREHEAD = 1, 152, 10

# Eyelid contours, outer corner -> inner corner, corners excluded.
UPPER_LID_R = (246, 161, 160, 159, 158, 157, 173)
LOWER_LID_R = (7, 163, 144, 145, 153, 154, 155)
UPPER_LID_L = (466, 388, 387, 386, 385, 384, 398)
LOWER_LID_L = (249, 390, 373, 374, 380, 381, 382)

# Upper edge of the eyebrows, outer -> inner.
BROW_UPPER_R = (70, 63, 105, 66, 107)
BROW_UPPER_L = (300, 293, 334, 296, 336)

# Lip contours, right corner -> left corner (corners excluded).
LIP_OUTER_UPPER = (185, 40, 39, 37, 0, 267, 269, 270, 409)
LIP_OUTER_LOWER = (146, 91, 181, 84, 17, 314, 405, 321, 375)
LIP_INNER_UPPER_ROW = (191, 80, 81, 82, 13, 312, 311, 310, 415)
LIP_INNER_LOWER_ROW = (95, 88, 178, 87, 14, 317, 402, 318, 324)
LIP_INNER_CORNER_R, LIP_INNER_CORNER_L = 78, 308

NOSE_ALA_R, NOSE_ALA_L = 98, 327  # outer edges of the nostril wings
GLABELLA = 9


def closed_loop(corner_a: int, upper: Sequence[int], corner_b: int, lower: Sequence[int]) -> tuple[int, ...]:
    """An ordered closed loop of vertices: ``corner_a``, the ``upper`` row, ``corner_b``, and the
    ``lower`` row back (both rows run from ``corner_a``'s side to ``corner_b``'s)."""
    return (corner_a, *upper, corner_b, *reversed(lower))


# The holes of the mesh and the lips' outline, as ordered closed loops.
#: Inner lip contour (mediapipe FACEMESH_LIPS): corner 78, upper row, corner 308, lower row back;
#: it bounds the mouth opening.
LIP_INNER_LOOP = closed_loop(LIP_INNER_CORNER_R, LIP_INNER_UPPER_ROW, LIP_INNER_CORNER_L, LIP_INNER_LOWER_ROW)
#: Outer lip contour: corner 61, upper lip, corner 291, lower lip back.
LIP_OUTER_LOOP = closed_loop(MOUTH_CORNER_R, LIP_OUTER_UPPER, MOUTH_CORNER_L, LIP_OUTER_LOWER)
#: Lid margins (FACEMESH_RIGHT_EYE / FACEMESH_LEFT_EYE): outer corner, upper lid, inner corner,
#: lower lid back; they bound the eye openings.
EYE_LOOP_R = closed_loop(EYE_OUTER_R, UPPER_LID_R, EYE_INNER_R, LOWER_LID_R)
EYE_LOOP_L = closed_loop(EYE_OUTER_L, UPPER_LID_L, EYE_INNER_L, LOWER_LID_L)
#: The iris points the refined tracker adds after the mesh (scheme ``mediapipe-478``): centre
#: first, then four points on the iris' edge.
IRIS_R = tuple(range(N_VERTICES, N_VERTICES + 5))
IRIS_L = tuple(range(N_VERTICES + 5, N_VERTICES + 10))


def triangles_from_edges(edges) -> np.ndarray:
    """Faces of a triangulated surface given only its edge set: (F,3) int64, unoriented.

    Every 3-cycle of the edge graph is a candidate face; a 3-cycle that is not a face (a
    "separating" triangle) shows itself by edges that would border three faces, which a
    manifold surface never has, so candidates whose three edges all appear three times go.
    """
    edge_set = {tuple(sorted(map(int, e))) for e in edges}
    adj = defaultdict(set)
    for a, b in edge_set:
        adj[a].add(b)
        adj[b].add(a)
    cand = sorted({tuple(sorted((a, b, c))) for a, b in edge_set for c in adj[a] & adj[b]})
    use = defaultdict(int)
    for a, b, c in cand:
        for e in ((a, b), (a, c), (b, c)):
            use[e] += 1
    keep = [t for t in cand if not all(use[e] > 2 for e in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2])))]
    return np.asarray(keep, np.int64)


def orient_triangles(tris: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Consistently wound faces (F,3) whose normals point to +Z (towards the viewer) on average.

    Winding is propagated across shared edges (neighbours traverse a shared edge in opposite
    directions); the global sign is then chosen from the geometry ``verts`` (V,3).
    """
    tris = tris.copy()
    by_edge = defaultdict(list)
    for f, t in enumerate(tris):
        for k in range(3):
            by_edge[tuple(sorted((t[k], t[(k + 1) % 3])))].append(f)
    done = np.zeros(len(tris), bool)
    for seed in range(len(tris)):
        if done[seed]:
            continue
        done[seed] = True
        queue = deque([seed])
        while queue:
            f = queue.popleft()
            t = tris[f]
            for k in range(3):
                a, b = t[k], t[(k + 1) % 3]
                for g in by_edge[tuple(sorted((a, b)))]:
                    if done[g]:
                        continue
                    u = tris[g]
                    # g must traverse the shared edge as b -> a
                    if any(u[j] == a and u[(j + 1) % 3] == b for j in range(3)):
                        tris[g] = u[::-1]
                    done[g] = True
                    queue.append(g)
    if face_normals(verts, tris)[:, 2].sum() < 0:
        tris = tris[:, ::-1]
    return np.ascontiguousarray(tris)


def face_normals(verts: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Area-weighted face normals (F,3) of verts (V,3)."""
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    return np.cross(b - a, c - a)


def outer_boundary(tris: np.ndarray) -> np.ndarray:
    """The mesh's outer outline: (B,) vertex indices of its longest boundary loop, in order.

    Boundary edges belong to one triangle only; they chain into loops (the face outline and the
    holes of the mouth and eyes), of which the outline is the longest.
    """
    tris = np.asarray(tris, np.int64)
    count: dict[tuple[int, int], int] = defaultdict(int)
    for a, b in np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]]):
        count[(min(a, b), max(a, b))] += 1
    nxt: dict[int, list[int]] = defaultdict(list)
    for (a, b), c in count.items():
        if c == 1:
            nxt[a].append(b)
            nxt[b].append(a)
    loops, seen = [], set()
    for start in nxt:
        if start in seen:
            continue
        loop, prev, cur = [start], -1, start
        seen.add(start)
        while True:
            step = [v for v in nxt[cur] if v != prev and (v not in seen or (v == start and len(loop) > 2))]
            if not step or step[0] == start:
                break
            prev, cur = cur, step[0]
            loop.append(cur)
            seen.add(cur)
        loops.append(loop)
    return np.asarray(max(loops, key=len), np.int64)


def mesh_edges(tris: np.ndarray) -> np.ndarray:
    """Unique undirected edges (E,2) of faces (F,3)."""
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def geodesic_distances(verts: np.ndarray, tris: np.ndarray, sources) -> np.ndarray:
    """(V,) shortest edge-path distance from the nearest of ``sources`` over the mesh.

    Paths go around holes (the mouth and eye openings), so an upper-lip source is far from the
    lower lip even though they touch in space.
    """
    e = mesh_edges(tris)
    w = np.linalg.norm(verts[e[:, 0]] - verts[e[:, 1]], axis=1)
    n = len(verts)
    g = coo_matrix((np.r_[w, w], (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(n, n)).tocsr()
    return dijkstra(g, indices=np.atleast_1d(np.asarray(sources)), min_only=True)


def laplacian(n: int, tris: np.ndarray) -> np.ndarray:
    """Uniform graph Laplacian (V,V) float32: L = I - D^-1 A (rows sum to zero)."""
    e = mesh_edges(tris)
    a = np.zeros((n, n), np.float32)
    a[e[:, 0], e[:, 1]] = 1
    a[e[:, 1], e[:, 0]] = 1
    return np.eye(n, dtype=np.float32) - a / np.maximum(a.sum(1, keepdims=True), 1)
