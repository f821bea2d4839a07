"""Order of the gallery: from a first run to a submission."""

ORDER = (
    "plot_quick_start.py",
    "plot_fold_in_vs_popularity.py",
    "plot_grid_search.py",
    "plot_session_models.py",
    "plot_challenge_json.py",
)


class GalleryOrder:
    """sphinx-gallery sort key: the files of ``ORDER`` first, then by name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        rank = ORDER.index(filename) if filename in ORDER else len(ORDER)
        return (rank, filename)

    def __repr__(self):
        return "GalleryOrder()"
