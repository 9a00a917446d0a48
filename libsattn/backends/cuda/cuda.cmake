# CUDA backend (issue 11): included from libsattn/CMakeLists.txt after the parts.
# SATTN_CUDA=AUTO builds the kernels when nvcc is found (CI has nvcc but no GPU: the GPU test
# then reports itself skipped, exit 77); ON requires it; OFF skips it.
set(SATTN_CUDA AUTO CACHE STRING "Build the CUDA kernels: AUTO (when nvcc is found), ON or OFF")
set(SATTN_HAVE_CUDA OFF)
# nvcc does not take the sanitizer/fuzzer flags those builds add to every language: AUTO skips.
if(SATTN_CUDA STREQUAL "AUTO" AND (SATTN_SANITIZE OR SATTN_FUZZ))
  set(SATTN_CUDA_EFFECTIVE OFF)
else()
  set(SATTN_CUDA_EFFECTIVE ${SATTN_CUDA})
endif()
if(NOT SATTN_CUDA_EFFECTIVE STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(SATTN_HAVE_CUDA ON)
  elseif(SATTN_CUDA STREQUAL "ON")
    message(FATAL_ERROR "SATTN_CUDA=ON but no CUDA compiler was found")
  endif()
endif()
if(SATTN_HAVE_CUDA)
  # sm_90 machine code (Hopper) plus compute_80 PTX that newer GPUs JIT-compile.
  set(SATTN_CUDA_FLAGS -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_80,code=compute_80)
  add_library(sattn_cuda_kernels STATIC ${CMAKE_CURRENT_LIST_DIR}/kernels.cu ${CMAKE_CURRENT_LIST_DIR}/kernels_tc.cu
              ${CMAKE_CURRENT_LIST_DIR}/kernels_bwd.cu ${CMAKE_CURRENT_LIST_DIR}/kernels_tc_bwd.cu)
  target_compile_options(sattn_cuda_kernels PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:${SATTN_CUDA_FLAGS} -O3>)
  set_target_properties(sattn_cuda_kernels PROPERTIES CUDA_ARCHITECTURES OFF CUDA_STANDARD 17
                        POSITION_INDEPENDENT_CODE ON)
  target_include_directories(sattn_cuda_kernels PUBLIC ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(sattn_cuda_kernels PUBLIC CUDA::cudart_static)
  # The Hopper forward (kernels_hopper.cu: wgmma) needs the arch-specific sm_90a target, which nvcc
  # has since 12.0; it is its own library because its one gencode differs from the others'. The
  # runtime dispatch (tc_launch) takes it only on compute capability 9.0 devices.
  if(CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.0)
    add_library(sattn_cuda_hopper STATIC ${CMAKE_CURRENT_LIST_DIR}/kernels_hopper.cu)
    target_compile_options(sattn_cuda_hopper PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-gencode=arch=compute_90a,code=sm_90a -O3>)
    set_target_properties(sattn_cuda_hopper PROPERTIES CUDA_ARCHITECTURES OFF CUDA_STANDARD 17
                          POSITION_INDEPENDENT_CODE ON)
    target_include_directories(sattn_cuda_hopper PRIVATE ${CMAKE_CURRENT_LIST_DIR})
    target_compile_definitions(sattn_cuda_kernels PRIVATE SATTN_HOPPER=1)
    target_link_libraries(sattn_cuda_kernels PUBLIC sattn_cuda_hopper)
  endif()
  # Only run_cuda.cpp sees CUDA: the other libsattn objects keep their flags (and ccache hits).
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/run_cuda.cpp TARGET_DIRECTORY sattn_cuda PROPERTIES
                              COMPILE_DEFINITIONS SATTN_HAVE_CUDA=1
                              INCLUDE_DIRECTORIES "${CMAKE_CURRENT_LIST_DIR};${CUDAToolkit_INCLUDE_DIRS}")
  foreach(t libsattn sattn_check_cuda sattn_check_registry sattn_check_capi)
    if(TARGET ${t})
      target_link_libraries(${t} PRIVATE $<LINK_ONLY:sattn_cuda_kernels>)
    endif()
  endforeach()
  if(BUILD_TESTING)
    add_executable(test_cuda_kernels ${PROJECT_SOURCE_DIR}/tests/integration/cuda/test_cuda_kernels.cpp)
    target_link_libraries(test_cuda_kernels PRIVATE sattn_cuda_kernels)
    add_test(NAME cuda.kernels COMMAND test_cuda_kernels 48)
    set_tests_properties(cuda.kernels PROPERTIES SKIP_RETURN_CODE 77)
  endif()
endif()
# `sattn run --backend cuda` (run_cuda.cpp, the part sattn_cuda) is always part of libsattn;
# without the kernels it reports exit 4.
