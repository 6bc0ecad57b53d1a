from django.urls import path

from config.routes import operations
from images.api import views

urlpatterns = [
    path("images", views.ImageListApi.as_view(), name="image-list"),
    path("images/upload", views.ImageUploadApi.as_view(), name="image-upload"),
    path("images/upscale", views.ImageUpscaleApi.as_view(), name="image-upscale"),
    path("images/limits", views.ImageLimitsApi.as_view(), name="image-limits"),
    path("images/jobs/<uuid:job_id>", views.JobDetailApi.as_view(), name="image-job"),
    path(
        "images/<uuid:image_id>",
        operations(views.ImageDetailApi, views.ImageDeleteApi),
        name="image-detail",
    ),
    path("images/<uuid:image_id>/file", views.ImageFileApi.as_view(), name="image-file"),
    path(
        "images/<uuid:image_id>/thumbnail",
        views.ImageThumbnailApi.as_view(),
        name="image-thumbnail",
    ),
]
