"""``python -m bench``: every benchmark, default sizes."""

from bench import poll_cost, qr_render

poll_cost.main()
qr_render.main([])
