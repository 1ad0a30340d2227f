# The NCCL communicator: compiled in when CUDA LibTorch and NCCL were found (cmake/SpvitDependencies.cmake),
# otherwise a stub that explains how to get it.
if(SPVIT_HAVE_NCCL)
  target_sources(spvit_dist PRIVATE ${CMAKE_CURRENT_LIST_DIR}/nccl_communicator.cpp
                                    ${CMAKE_CURRENT_LIST_DIR}/nccl_watchdog.cpp)
  target_link_libraries(spvit_dist PUBLIC NCCL::NCCL)
else()
  target_sources(spvit_dist PRIVATE ${CMAKE_CURRENT_LIST_DIR}/nccl_unavailable.cpp)
endif()
